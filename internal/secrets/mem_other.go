//go:build !linux

package secrets

// lockedMem is plain memory where mlock is not wired up.
type lockedMem struct {
	buf []byte
	err error
}

func newLockedMem(n int) *lockedMem { return &lockedMem{buf: make([]byte, n)} }

func (m *lockedMem) wipe() { clear(m.buf); m.buf = nil }

func noCoreDumps() error { return nil }
