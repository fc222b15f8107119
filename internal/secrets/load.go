package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
)

// Sources are the secret options of a command line as given: which names
// become placeholders, for which hosts, and where each real value comes
// from (this process's environment unless a file or a command is named).
type Sources struct {
	Secrets   []string // --secret NAME=HOSTGLOB[,HOSTGLOB...]
	Files     []string // --secret-file NAME=PATH
	Commands  []string // --secret-cmd NAME=CMD
	InBody    []string // --secret-in-body NAME
	Cleartext []string // --secret-cleartext NAME
}

// Limits on a secret's source: a value is a credential, not a document,
// and a secret command that hangs must not keep the jail from starting.
const (
	MaxValue       = 64 << 10
	CommandTimeout = 30 * time.Second
	maxStderr      = 4 << 10
)

// Error is a secret that cannot be had; Hint says what to do. Usage is
// set when the command line or the environment is wrong (a usage error),
// not when reading a file or running a command failed.
type Error struct {
	Err   error
	Hint  string
	Usage bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func usageErr(hint, format string, args ...any) *Error {
	return &Error{Err: fmt.Errorf(format, args...), Hint: hint, Usage: true}
}

// validName is an environment variable name a shell can set.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Empty reports whether no secret is asked for at all.
func (s Sources) Empty() bool {
	return len(s.Secrets)+len(s.Files)+len(s.Commands)+len(s.InBody)+len(s.Cleartext) == 0
}

// Check validates the options without reading any value: names, globs,
// that every other option names a --secret, and that no secret's host
// is one whose TLS passes unopened (noMITM): it could not be swapped there.
func (s Sources) Check(noMITM []string) error {
	_, err := s.specs(noMITM)
	return err
}

// specs are the checked options, one Spec per --secret, without values.
func (s Sources) specs(noMITM []string) ([]Spec, error) {
	var specs []Spec
	index := map[string]int{}
	for _, a := range s.Secrets {
		name, globs, err := splitSecret(a)
		if err != nil {
			return nil, err
		}
		if _, dup := index[name]; dup {
			return nil, usageErr("give each NAME once, with all its hosts: --secret NAME=HOST1,HOST2", "--secret %s given twice", name)
		}
		if err := checkNoMITM(name, globs, noMITM); err != nil {
			return nil, err
		}
		index[name] = len(specs)
		specs = append(specs, Spec{Name: name, Hosts: globs})
	}
	if _, _, err := s.sources(index); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		flag  string
		names []string
		set   func(*Spec)
	}{
		{"--secret-in-body", s.InBody, func(sp *Spec) { sp.InBody = true }},
		{"--secret-cleartext", s.Cleartext, func(sp *Spec) { sp.Cleartext = true }},
	} {
		for _, n := range f.names {
			i, ok := index[n]
			if !ok {
				return nil, notDeclared(f.flag, n)
			}
			f.set(&specs[i])
		}
	}
	return specs, nil
}

// sources reads --secret-file and --secret-cmd: NAME to path and NAME to
// command.
func (s Sources) sources(index map[string]int) (files, commands map[string]string, err error) {
	files, commands = map[string]string{}, map[string]string{}
	for _, f := range []struct {
		flag, what, example string
		args                []string
		into                map[string]string
	}{
		{"--secret-file", "PATH", "/root/api-key", s.Files, files},
		{"--secret-cmd", "CMD", "'pass show api-key'", s.Commands, commands},
	} {
		for _, a := range f.args {
			name, v, ok := strings.Cut(a, "=")
			if !ok || v == "" {
				return nil, nil, usageErr(fmt.Sprintf("as in: %s API_KEY=%s", f.flag, f.example),
					"%s wants NAME=%s, got %q", f.flag, f.what, a)
			}
			if _, ok := index[name]; !ok {
				return nil, nil, notDeclared(f.flag, name)
			}
			if _, dup := files[name]; dup {
				return nil, nil, usageErr("a secret's value comes from one place", "%s: %s already has a --secret-file", f.flag, name)
			}
			if _, dup := commands[name]; dup {
				return nil, nil, usageErr("a secret's value comes from one place", "%s: %s already has a --secret-cmd", f.flag, name)
			}
			f.into[name] = v
		}
	}
	return files, commands, nil
}

func notDeclared(flag, name string) *Error {
	return usageErr(fmt.Sprintf("declare it first, with the hosts it is for: --secret %s=HOSTGLOB", name),
		"%s %s: no --secret %s", flag, name, name)
}

// splitSecret reads NAME=HOSTGLOB[,HOSTGLOB...].
func splitSecret(a string) (string, []string, error) {
	const hint = "as in: --secret ANTHROPIC_API_KEY=api.anthropic.com (hosts separated by commas)"
	name, list, ok := strings.Cut(a, "=")
	if !ok || list == "" {
		return "", nil, usageErr(hint, "--secret wants NAME=HOSTGLOB[,HOSTGLOB...], got %q", a)
	}
	if !validName.MatchString(name) {
		return "", nil, usageErr("a NAME is an environment variable's: letters, digits and _, not starting with a digit",
			"--secret: %q is not a variable name", name)
	}
	var globs []string
	for _, g := range strings.Split(list, ",") {
		g = hostname.Fold(strings.TrimSpace(g))
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.ContainsAny(g, "/:@ ") {
			return "", nil, usageErr(hint, "--secret %s: %q is not a host glob", name, g)
		}
		globs = append(globs, g)
	}
	return name, globs, nil
}

// checkNoMITM refuses a secret host that --no-mitm passes unopened (either
// glob matching the other): the placeholder could not be swapped there.
func checkNoMITM(name string, globs, noMITM []string) error {
	for _, g := range globs {
		for _, n := range noMITM {
			n = hostname.Fold(n)
			a, _ := path.Match(n, g)
			b, _ := path.Match(g, n)
			if a || b {
				return usageErr(fmt.Sprintf("a --no-mitm host's TLS is never opened, so its secret could not be swapped in: leave %q out of --no-mitm or of --secret %s", n, name),
					"--secret %s host %q matches --no-mitm %q", name, g, n)
			}
		}
	}
	return nil
}

// LoadOptions say where Load finds what it reads.
type LoadOptions struct {
	// LookupEnv finds a value given in the environment; nil is
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Stdin is what a secret command reads (a prompt for a passphrase);
	// nil is nothing.
	Stdin io.Reader
	// Warn, if set, gets what went wrong but does not stop the run.
	Warn func(msg string)
}

// Load checks the options, reads every value once (from the environment,
// a file, or a command run with sh -c, before the jail exists) and returns
// the Set. Each secret's name is then removed from this process's
// environment, so nothing ebpfjail starts later (rule programs, the
// command) inherits the real value, and its value is overwritten in the
// initial environment block that /proc/PID/environ shows. An error is an
// *Error. Without any secret it returns a nil Set, which holds none.
func Load(s Sources, noMITM []string, o LoadOptions) (*Set, error) {
	specs, err := s.specs(noMITM)
	if err != nil || len(specs) == 0 {
		return nil, err
	}
	index := map[string]int{}
	for i, sp := range specs {
		index[sp.Name] = i
	}
	files, commands, _ := s.sources(index) // checked by specs
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	defer func() {
		for i := range specs {
			clear(specs[i].Value)
		}
	}()
	for i := range specs {
		if specs[i].Value, err = value(specs[i].Name, files, commands, o); err != nil {
			return nil, err
		}
	}
	set, err := New(specs)
	if err != nil {
		// New's errors name the secret as "secret NAME": the flag's spelling.
		return nil, &Error{Err: fmt.Errorf("--%w", err), Hint: "a secret is a key or token as a service issued it: at least 16 letters and digits, no control characters", Usage: true}
	}
	for _, sp := range specs {
		os.Unsetenv(sp.Name)
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if err := scrubEnviron(set.Names()); err != nil {
		o.Warn(fmt.Sprintf("the secrets stay readable in /proc/%d/environ (root only): %v", os.Getpid(), err))
	}
	if err := set.LockError(); err != nil {
		o.Warn(fmt.Sprintf("the secrets' values could not be locked in memory (they may reach swap): %v", err))
	}
	return set, nil
}

// value reads one secret's value from where the options say.
func value(name string, files, commands map[string]string, o LoadOptions) ([]byte, error) {
	var v []byte
	switch {
	case files[name] != "":
		b, err := readFile(files[name])
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("--secret-file %s: %w", name, err), Hint: "the file is read once by ebpfjail (as root), before the jail is made"}
		}
		v = bytes.TrimRight(b, "\r\n")
	case commands[name] != "":
		b, err := runCommand(commands[name], o.Stdin, CommandTimeout)
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("--secret-cmd %s: %w", name, err),
				Hint: "the command runs once with sh -c, as ebpfjail's user, before the jail is made; its standard output is the value"}
		}
		v = bytes.TrimSpace(b)
	default:
		s, ok := o.LookupEnv(name)
		if !ok {
			return nil, usageErr(fmt.Sprintf("sudo resets the environment: keep it with sudo --preserve-env=%s, or read it with --secret-file %s=PATH or --secret-cmd %s=CMD", name, name, name),
				"--secret %s: %s is not in ebpfjail's environment", name, name)
		}
		v = []byte(s)
	}
	if len(v) == 0 {
		return nil, usageErr("a secret needs a value; check where it comes from", "--secret %s: the value is empty", name)
	}
	if len(v) > MaxValue {
		clear(v)
		return nil, usageErr("a secret is a credential, not a document", "--secret %s: the value is longer than %d bytes", name, MaxValue)
	}
	return v, nil
}

// readFile reads at most MaxValue+1 bytes of p, into one buffer made up
// front (a growing one would leave copies of the value behind).
func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, MaxValue+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		clear(buf)
		return nil, err
	}
	return buf[:n], nil
}

// runCommand runs cmd with sh -c and returns its standard output, or an
// error that carries the first line of its standard error. It is killed,
// with whatever it started, after timeout or once its output passes
// MaxValue.
func runCommand(cmdline string, stdin io.Reader, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Stdin = stdin
	// Room for all of it up front: a growing buffer would leave copies of
	// the value behind in memory no one clears.
	out := &capped{buf: make([]byte, 0, MaxValue+1), limit: MaxValue + 1, over: cancel}
	errb := &capped{limit: maxStderr}
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	switch {
	case out.overflow:
		clear(out.buf)
		return nil, fmt.Errorf("its output passed %d bytes", MaxValue)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		clear(out.buf)
		return nil, fmt.Errorf("no answer within %v", timeout)
	case err != nil:
		clear(out.buf)
		if line := firstLine(errb.buf); line != "" {
			return nil, fmt.Errorf("%w: %s", err, line)
		}
		return nil, err
	}
	return out.buf, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}

// capped keeps the first limit bytes written to it; past them it calls
// over (if set) and drops the rest.
type capped struct {
	buf      []byte
	limit    int
	overflow bool
	over     func()
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.limit - len(c.buf)
	if len(p) > room {
		c.buf = append(c.buf, p[:max(room, 0)]...)
		if !c.overflow && c.over != nil {
			c.over()
		}
		c.overflow = true
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}
