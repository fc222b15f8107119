package report

import (
	"io"
	"sync"
)

// Gate is ebpfjail's stderr when it may share a terminal with the command.
// While held (from the command's start to its exit), what ebpfjail writes
// waits, so a full-screen program's screen is not garbled by a warning; at
// Release it is written, in order, after the command has given the
// terminal back. Released, a Gate writes through.
//
// What waits is bounded: the first maxHeld writes are kept, the rest only
// counted, and Release says how many were left out.
type Gate struct {
	w io.Writer

	mu      sync.Mutex
	held    bool
	lines   [][]byte
	dropped int
}

// maxHeld writes wait at most; a warning repeated more often is rate
// limited before it gets here, so the first ones say what happened.
const maxHeld = 64

// NewGate returns a released Gate writing to w.
func NewGate(w io.Writer) *Gate { return &Gate{w: w} }

// Write writes p, or keeps it while g is held. It never fails while held.
func (g *Gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		return g.w.Write(p)
	}
	if len(g.lines) < maxHeld {
		g.lines = append(g.lines, append([]byte(nil), p...))
	} else {
		g.dropped++
	}
	return len(p), nil
}

// Hold keeps what is written from now until Release. A nil Gate ignores it.
func (g *Gate) Hold() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// Release writes what was kept and lets later writes through. A nil Gate
// ignores it; so does a Gate not held.
func (g *Gate) Release() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		return
	}
	g.held = false
	for _, l := range g.lines {
		g.w.Write(l)
	}
	if g.dropped > 0 {
		g.w.Write([]byte("ebpfjail: " + plural(g.dropped, "more message", "more messages") + " while the command ran, left out\n"))
	}
	g.lines, g.dropped = nil, 0
}
