package supervisor

import (
	"io"
	"log/slog"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/ratelog"
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
	return slog.New(ratelog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), logBurst, logInterval))
}

// logBurst similar log lines per logInterval reach the terminal.
const (
	logBurst    = 5
	logInterval = 10 * time.Second
)
