package jail

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"

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

// newCmd builds the exec.Cmd for c: its path looked up, its user, its own
// process group and, in the foreground, the terminal.
func newCmd(c Command) (*exec.Cmd, error) {
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("start command: %w", ErrNotFound)
	}
	path, err := lookPath(c.Args[0], c.Env)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Args, cmd.Env = c.Args, c.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.User != nil {
		cmd.Env = userEnv(c.Env, c.User)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.User.UID, Gid: c.User.GID, Groups: c.User.Groups}
	}
	if c.Foreground && c.Stdin != nil {
		cmd.SysProcAttr.Foreground = true
		// Used before descriptors are rearranged: the parent's fd number.
		cmd.SysProcAttr.Ctty = int(c.Stdin.Fd())
	}
	return cmd, nil
}
