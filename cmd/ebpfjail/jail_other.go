//go:build !linux

package main

import (
	"fmt"
	"io"
	"log/slog"
)

// needsLinux is the failure of a mode that needs the Linux kernel.
func needsLinux(what string) error {
	return fail(exitFailure, fmt.Errorf("%s needs Linux", what),
		"here --weak runs a command told to use the proxy, --server runs an explicit proxy, and --test tries a rule")
}

func runJail(*options, *slog.Logger) (int, error)     { return 0, needsLinux("jailing a command") }
func runCleanup(io.Writer, *slog.Logger) (int, error) { return 0, needsLinux("--cleanup") }
func runAttack(io.Writer, *options, *slog.Logger) (int, error) {
	return 0, needsLinux("check --attack")
}
func runCheck(io.Writer) (int, error)       { return 0, needsLinux("check") }
func hiddenCommand([]string) (int, bool)    { return 0, false }
func pathsError(err error) error            { return fail(exitFailure, err) }
func loadError(_ *options, err error) error { return fail(exitFailure, err) }
