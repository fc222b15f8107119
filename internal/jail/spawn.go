package jail

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Command is what to run in the jail.
type Command struct {
	Args   []string // Args[0] is looked up in PATH
	Env    []string // passed as is, after HOME/USER/LOGNAME are set for User
	User   *User
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
	// Foreground gives the command's process group the terminal on Stdin,
	// so shells and TUIs work and ^C reaches the command, not ebpfjail.
	Foreground bool
	// Mask are unix sockets to cover in the command's own mount namespace
	// (mask.go), so no spelling of their paths reaches them; abstract
	// names are skipped. Empty: the command shares ebpfjail's mounts.
	Mask []string
	// Log, if set, is told which sockets were masked.
	Log *slog.Logger
	// OpenAbstractUnix leaves the Landlock abstract unix socket scope
	// off (--allow-unix @NAME): Landlock has no per-name exception.
	OpenAbstractUnix bool
}

// ErrNotFound and ErrNotExecutable tell the caller which of the documented
// exit statuses (127, 126) applies.
var (
	ErrNotFound      = errors.New("jail: command not found")
	ErrNotExecutable = errors.New("jail: command not executable")
	// ErrMask: a denied unix socket could not be masked (mask.go), so
	// the command was not started.
	ErrMask = errors.New("jail: cannot mask the denied unix sockets")
)

// Start starts cmd inside the jail's cgroup. The returned process is the
// leader of its own process group.
func (j *Jail) Start(c Command) (*os.Process, error) {
	cg, err := os.Open(j.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	defer cg.Close()
	return start(c, int(cg.Fd()))
}

// StartUnjailed starts cmd without a jail, as this process's user when
// c.User is nil (ebpfjail --weak: no root, no kernel steering).
func StartUnjailed(c Command) (*os.Process, error) {
	return start(c, -1)
}

func start(c Command, cgroupFD int) (*os.Process, error) {
	cmd, err := command(c, cgroupFD)
	if err != nil {
		return nil, err
	}
	var filter []bpf.RawInstruction
	var iso Isolation
	if cgroupFD >= 0 {
		if filter, err = socketFilter(); err != nil {
			return nil, err
		}
		iso = ProbeIsolation()
	}
	ch := make(chan startResult, 1)
	go forkRestricted(cmd, c, cgroupFD >= 0, iso, filter, ch)
	r := <-ch
	switch {
	case r.err != nil && r.setup:
		return nil, r.err
	case r.err != nil:
		return nil, classifyStartErr(c.Args[0], r.err)
	}
	if c.Log != nil && len(c.Mask) > 0 {
		c.Log.Info("unix sockets masked in the jail's mount namespace", "paths", r.masked)
	}
	return r.p, nil
}

// command builds the exec.Cmd for c: its path looked up, its user, its
// process group and terminal, and, with cgroupFD, born in the jail.
func command(c Command, cgroupFD int) (*exec.Cmd, error) {
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("start command: %w", ErrNotFound)
	}
	path, err := lookPath(c.Args[0], c.Env)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Args = c.Args
	cmd.Env = c.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cgroupFD >= 0 {
		// Born in the jail: no window in which it runs outside.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	if c.User != nil {
		cmd.Env = userEnv(c.Env, c.User)
		cmd.SysProcAttr.Credential = &syscall.Credential{
			Uid:    c.User.UID,
			Gid:    c.User.GID,
			Groups: c.User.Groups,
		}
	}
	if c.Foreground && c.Stdin != nil {
		cmd.SysProcAttr.Foreground = true
		// Used before descriptors are rearranged: the parent's fd number.
		cmd.SysProcAttr.Ctty = int(c.Stdin.Fd())
	}
	return cmd, nil
}

// startResult is what forkRestricted reports.
type startResult struct {
	p      *os.Process
	masked []string
	err    error
	setup  bool // err is the jail's, not the command's
}

// forkRestricted starts cmd from a thread of its own that carries the
// restrictions. No_new_privs, the Landlock domain and the seccomp filter
// are per thread and inherited over fork and exec, and Go has no
// SysProcAttr field for them: set them on a thread of our own, fork from
// that thread, and let the thread die with its goroutine.
func forkRestricted(cmd *exec.Cmd, c Command, jailed bool, iso Isolation, filter []bpf.RawInstruction, ch chan<- startResult) {
	runtime.LockOSThread()
	// No UnlockOSThread: the thread carries no_new_privs, the
	// mount namespace, the Landlock domain and the filter and must
	// not run other goroutines; it exits when this goroutine returns.
	//
	// Mounts first: nothing after them (Landlock) may forbid them.
	var masked []string
	if len(c.Mask) > 0 {
		var err error
		if masked, err = maskSockets(c.Mask); err != nil {
			ch <- startResult{err: fmt.Errorf("%w: %w", ErrMask, err), setup: true}
			return
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		ch <- startResult{err: fmt.Errorf("set no_new_privs: %w", err)}
		return
	}
	if jailed {
		if err := restrictSelf(iso, c.OpenAbstractUnix); err != nil {
			ch <- startResult{err: err, setup: true}
			return
		}
	}
	if filter != nil {
		if err := installFilter(filter); err != nil {
			ch <- startResult{err: err}
			return
		}
	}
	err := cmd.Start()
	ch <- startResult{p: cmd.Process, masked: masked, err: err}
}

func classifyStartErr(name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("start %s: %w", name, ErrNotFound)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR):
		return fmt.Errorf("start %s: %w: %v", name, ErrNotExecutable, err)
	}
	return fmt.Errorf("start %s: %w", name, err)
}

// lookPath resolves name like a shell would, with the PATH of env.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		fi, err := os.Stat(name)
		switch {
		case err != nil:
			return "", fmt.Errorf("start %s: %w", name, ErrNotFound)
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			return "", fmt.Errorf("start %s: %w", name, ErrNotExecutable)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var found string
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if fi.Mode()&0o111 != 0 {
			return p, nil
		}
		if found == "" {
			found = p
		}
	}
	if found != "" {
		return "", fmt.Errorf("start %s: %w", name, ErrNotExecutable)
	}
	return "", fmt.Errorf("start %s: %w", name, ErrNotFound)
}

// userEnv sets the identity variables for u, replacing inherited ones.
func userEnv(env []string, u *User) []string {
	set := map[string]string{"HOME": u.Home, "USER": u.Name, "LOGNAME": u.Name}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range []string{"HOME", "USER", "LOGNAME"} {
		if set[k] != "" {
			out = append(out, k+"="+set[k])
		}
	}
	return out
}

// CloseInheritedFDs marks every descriptor above 2 close-on-exec, so the
// command inherits nothing ebpfjail was started with.
func CloseInheritedFDs() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	return nil
}
