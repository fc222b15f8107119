package supervisor

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// termGrace is how long a command has to exit after SIGTERM on the timeout
// before the whole jail is killed.
const termGrace = 2 * time.Second

// Forwarded are the signals a supervisor passes on to the command's
// process group rather than dying of them (the jail must be torn down
// first).
var Forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// Wait waits for the command, the leader of process group pid, and returns
// the status to exit with. tty, when not nil, is the terminal the command
// was given: it is taken back when the command stops (^Z) and when it
// exits. Signals on sigs are forwarded, statsSignal after calling stats.
// After timeout (none if 0) the command gets SIGTERM, and killAll kills
// whatever of it is left after a grace period.
func Wait(pid int, tty *os.File, sigs <-chan os.Signal, timeout time.Duration, killAll, stats func(), log *slog.Logger) int {
	status := wait(pid, tty, sigs, timeout, killAll, stats, log)
	if tty != nil {
		ReclaimTerminal(tty)
	}
	return status
}

func wait(pid int, tty *os.File, sigs <-chan os.Signal, timeout time.Duration, killAll, stats func(), log *slog.Logger) int {
	done := make(chan unix.WaitStatus, 1)
	go func() { done <- reap(pid, tty, log) }()
	var timer <-chan time.Time
	if timeout > 0 {
		timer = time.After(timeout)
	}
	timedOut := false
	for {
		select {
		case ws := <-done:
			if timedOut {
				return ExitTimeout
			}
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		case sig := <-sigs:
			if sig == statsSignal && stats != nil {
				stats()
			}
			log.Info("forwarding signal", "signal", sig.String())
			unix.Kill(-pid, sig.(syscall.Signal))
		case <-timer:
			timer = nil
			timedOut = true
			log.Info("timeout: stopping the command", "after", timeout.Seconds())
			unix.Kill(-pid, unix.SIGTERM)
			go func() {
				time.Sleep(termGrace)
				killAll()
			}()
		}
	}
}

// reap waits until the command exits. When it owns the terminal and is
// stopped (^Z), the supervisor stops too, so the user's shell gets the
// terminal back; when the shell resumes the supervisor (fg), the command
// gets the terminal and is resumed in turn, as sudo does.
func reap(pid int, tty *os.File, log *slog.Logger) unix.WaitStatus {
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, unix.SIGCONT)
	defer signal.Stop(cont)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WUNTRACED, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			log.Warn("wait for command", "err", err)
			return unix.WaitStatus(exitFailure << 8)
		}
		if !ws.Stopped() {
			return ws
		}
		if tty == nil {
			continue
		}
		ReclaimTerminal(tty)
		select {
		case <-cont: // a stale one
		default:
		}
		unix.Kill(os.Getpid(), unix.SIGSTOP)
		// kill() can return before the stop takes hold (another thread
		// may take the signal): only the SIGCONT of `fg` means resumed.
		<-cont
		setForeground(tty, pid)
		unix.Kill(-pid, unix.SIGCONT)
	}
}

// Foreground reports whether f is a terminal whose foreground process
// group is ours: then the command gets the terminal.
func Foreground(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// ReclaimTerminal makes our process group the foreground one of f again.
func ReclaimTerminal(f *os.File) { setForeground(f, unix.Getpgrp()) }

// setForeground gives the terminal f to process group pgrp. A background
// process may only do that with SIGTTOU ignored; it is ignored just for the
// call, because an ignored signal stays ignored across exec and the
// command must start with default dispositions (a background read must stop
// it, not fail with EIO).
func setForeground(f *os.File, pgrp int) {
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(int(f.Fd()), unix.TIOCSPGRP, pgrp)
}
