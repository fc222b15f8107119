// Package supervisor runs a command in a jail and tears the jail down: it
// finds the cgroup2 and bpffs mounts, starts the DNS shim and the proxy,
// loads and attaches the BPF programs to a new cgroup, starts the command
// in it, forwards signals, enforces the timeout, waits, and removes what it
// made. It takes a Config and a logger and returns the command's exit
// status, or an Error naming the step that failed; saying what the user
// can do about a failure is the caller's part.
//
// The waiting (signals, the terminal, ^Z, the timeout) is shared with
// running a command without a jail, and builds on any Unix; the jail
// itself needs Linux (the *_linux.go files).
package supervisor
