package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// termGrace is how long a command has to exit after SIGTERM on --timeout
// before the whole jail is killed.
const termGrace = 2 * time.Second

// forwarded are the signals ebpfjail passes on to the command's process
// group rather than dying of them (the jail must be torn down first).
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// wait waits for the command and returns the status ebpfjail exits with.
// killAll, after --timeout's grace, kills whatever of the command is left;
// stats runs on statsSignal, which is forwarded too.
func wait(pid int, fg bool, sigs <-chan os.Signal, timeout float64, killAll, stats func(), log *slog.Logger) int {
	done := make(chan unix.WaitStatus, 1)
	go func() { done <- reap(pid, fg, log) }()
	var timer <-chan time.Time
	if timeout > 0 {
		timer = time.After(time.Duration(timeout * float64(time.Second)))
	}
	timedOut := false
	for {
		select {
		case ws := <-done:
			if timedOut {
				return exitTimeout
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
			log.Info("timeout: stopping the command", "after", timeout)
			unix.Kill(-pid, unix.SIGTERM)
			go func() {
				time.Sleep(termGrace)
				killAll()
			}()
		}
	}
}

// reap waits until the command exits. When it owns the terminal and is
// stopped (^Z), ebpfjail stops too, so the user's shell gets the terminal
// back; when the shell resumes ebpfjail (fg), the command gets the terminal
// and is resumed in turn, as sudo does.
func reap(pid int, fg bool, log *slog.Logger) unix.WaitStatus {
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
		if !fg {
			continue
		}
		reclaimTerminal(os.Stdin)
		select {
		case <-cont: // a stale one
		default:
		}
		unix.Kill(os.Getpid(), unix.SIGSTOP)
		// kill() can return before the stop takes hold (another thread
		// may take the signal): only the SIGCONT of `fg` means resumed.
		<-cont
		setForeground(os.Stdin, pid)
		unix.Kill(-pid, unix.SIGCONT)
	}
}

// isForeground reports whether f is a terminal whose foreground process
// group is ours: then the command gets the terminal.
func isForeground(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

func reclaimTerminal(f *os.File) { setForeground(f, unix.Getpgrp()) }

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
