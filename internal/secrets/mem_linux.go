package secrets

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lockedMem holds the real values outside the Go heap: an anonymous
// mapping the collector never copies, locked so it is never written to
// swap, and left out of core dumps.
type lockedMem struct {
	buf    []byte
	mapped bool
	err    error // why locking failed, if it did (the values are still kept)
}

func newLockedMem(n int) *lockedMem {
	if n == 0 {
		return &lockedMem{}
	}
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return &lockedMem{buf: make([]byte, n), err: err}
	}
	m := &lockedMem{buf: buf, mapped: true}
	if err := unix.Mlock(buf); err != nil {
		m.err = err
	}
	// Best effort too: the process is made non-dumpable as well.
	unix.Madvise(buf, unix.MADV_DONTDUMP)
	return m
}

func (m *lockedMem) wipe() {
	clear(m.buf)
	if m.mapped {
		unix.Munmap(m.buf) // unlocks too
	}
	m.buf = nil
}

// noCoreDumps makes this process non-dumpable: no core file, and no
// ptrace or /proc/PID/mem by anyone but root, once a real value is in
// memory. The jailed command is not affected: execve makes a process
// dumpable again.
func noCoreDumps() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	return nil
}
