//go:build linux

package jail

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
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

// command builds the exec.Cmd for c (newCmd) and, with cgroupFD, has it
// born in the jail.
func command(c Command, cgroupFD int) (*exec.Cmd, error) {
	cmd, err := newCmd(c)
	if err != nil {
		return nil, err
	}
	if cgroupFD >= 0 {
		// Born in the jail: no window in which it runs outside.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
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

// CloseInheritedFDs marks every descriptor above 2 close-on-exec, so the
// command inherits nothing ebpfjail was started with.
func CloseInheritedFDs() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	return nil
}
