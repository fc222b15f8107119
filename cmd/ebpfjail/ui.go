package main

// Output rules (after age's tui.go):
//   - ebpfjail's own messages go to stderr; stdout belongs to the jailed
//     command (and to subcommands whose output is their result).
//   - A failure is one line "ebpfjail: error: ...", lowercase, no trailing
//     period, then zero or more "ebpfjail: hint: ..." lines saying what to do.
//   - Warnings are "ebpfjail: warning: ..." and never stop the run.

import (
	"fmt"
	"io"
	"os"

	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
)

// Exit statuses, as --help documents them.
const (
	exitUsage         = 2
	exitTimeout       = supervisor.ExitTimeout // after --timeout
	exitFailure       = 125                    // ebpfjail itself failed
	exitNotExecutable = 126
	exitNotFound      = 127
)

// exitError is a failure with the status to exit with and hints for the user.
type exitError struct {
	code  int
	err   error
	hints []string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error, hints ...string) *exitError {
	return &exitError{code: code, err: err, hints: hints}
}

func printError(w io.Writer, e *exitError) {
	fmt.Fprintf(w, "ebpfjail: error: %v\n", e.err)
	for _, h := range e.hints {
		fmt.Fprintf(w, "ebpfjail: hint: %s\n", h)
	}
}

func warnf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "ebpfjail: warning: "+format+"\n", args...)
}

// warn is warnf for a message made elsewhere.
func warn(msg string) { warnf(stderr, "%s", msg) }

// stderr is where ebpfjail's own messages go once the command may run: on
// a terminal the command shares, they wait while it runs (see quiet).
var stderr = report.NewGate(os.Stderr)

// quiet reports whether ebpfjail keeps off the terminal while o's command
// runs (supervisor.QuietTerminal); --server runs no command.
func quiet(o *options) bool {
	return !o.server && supervisor.QuietTerminal(supervisor.IsTerminal(os.Stderr), o.verbose)
}

// needRoot refuses to go on without root; example is the command line to
// show with sudo.
func needRoot(what, example string) error {
	if os.Geteuid() != 0 {
		return fail(exitFailure, fmt.Errorf("%s needs root", what),
			"run it with sudo, as in: sudo "+example)
	}
	return nil
}
