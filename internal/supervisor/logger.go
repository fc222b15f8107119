package supervisor

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/ratelog"
	"golang.org/x/sys/unix"
)

// NewLogger is the log a user of ebpfjail sees on w: warnings, with
// verbose 1 information (every request), with 2 debugging detail.
func NewLogger(w io.Writer, verbose int) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case verbose == 1:
		level = slog.LevelInfo
	case verbose >= 2:
		level = slog.LevelDebug
	}
	// A peer can make the same error happen thousands of times (reset
	// streams, malformed requests): the terminal gets a few, then a count.
	return slog.New(ratelog.New(newLineHandler(w, level), logBurst, logInterval))
}

// logBurst similar log lines per logInterval reach the terminal.
const (
	logBurst    = 5
	logInterval = 10 * time.Second
)

// QuietTerminal decides whether ebpfjail keeps quiet on its stderr while
// the command runs: when stderr is a terminal (stderrTerminal) and no -v
// asked for lines. The test is stderr alone, not also stdin: the command
// inherits that stderr, so whatever ebpfjail writes there lands on the
// screen the command draws on, whether it runs in the foreground or not
// (a job in the background of an interactive shell draws on the shell's
// screen too). On anything else (a file, a pipe, CI) the line per
// problem stays: nobody's screen is at stake, and scripts read them.
func QuietTerminal(stderrTerminal bool, verbose int) bool {
	return stderrTerminal && verbose == 0
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil
}
