// Package supervisor runs ebpfjail's modes below the command line. Jail
// runs a command in a jail: it finds the cgroup2 and bpffs mounts, starts
// the DNS shim and the proxy, loads and attaches the BPF programs to a new
// cgroup, starts the command in it, forwards signals, enforces the
// timeout, waits, and removes what it made. RunWeak runs a command told to
// use an explicit proxy, and Serve runs only that proxy. Check says what
// this host lacks for a jail, and Cleanup removes the jails of dead
// supervisors.
//
// Each takes its options and a logger and returns an exit status, or an
// *Error naming the step that failed; saying what the user can do about a
// failure is the caller's part. The rule (Rule), the records (Outputs)
// and the CA with the command's trust bundle (LoadCA, TrustFiles) are
// built here too, so that a mode is one call.
//
// The waiting (signals, the terminal, ^Z, the timeout), RunWeak and Serve
// build on any Unix; the jail itself needs Linux (the *_linux.go files).
package supervisor
