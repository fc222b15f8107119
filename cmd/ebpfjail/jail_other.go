//go:build !linux

package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
)

// A jail needs Linux (cgroup BPF, Landlock, seccomp); elsewhere the modes
// that need none (--server, --weak, --test, ca) work and these say so.

func runJail(*options, *slog.Logger) (int, error) {
	return 0, needsLinux("jailing a command")
}

func runCheck(io.Writer, *slog.Logger) (int, error) {
	return 0, needsLinux("check")
}

func runAttack(io.Writer, *options, *slog.Logger) (int, error) {
	return 0, needsLinux("check --attack")
}

func runCleanup(io.Writer, *slog.Logger) (int, error) {
	return 0, needsLinux("--cleanup")
}

// attackChild is the jailed side of check --attack, which never starts here.
func attackChild([]string) int {
	err := needsLinux("check --attack")
	printError(os.Stderr, err)
	return err.code
}

func needsLinux(what string) *exitError {
	return fail(exitFailure, errors.New(what+" needs Linux"),
		"on "+runtime.GOOS+", 'ebpfjail --weak -- COMMAND' runs the command with the proxy variables set (software that ignores them is not covered)",
		"'ebpfjail --server' runs an explicit proxy, 'ebpfjail --test URL' tries a rule")
}
