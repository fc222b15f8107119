//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxFileLimit caps the descriptor limit ebpfjail asks for.
const maxFileLimit = 1 << 20

// raiseFileLimit lets ebpfjail hold two descriptors per proxied connection
// (the jail's end and the upstream one) for as many connections as the
// jail opens: the soft and hard RLIMIT_NOFILE go up to the kernel's
// fs.nr_open, at most maxFileLimit (raising the hard limit needs root).
//
// Call it only after the command has started. Go raises its own soft limit
// at startup and restores the original in the children it starts, but
// only as long as the program never sets RLIMIT_NOFILE itself: since Go
// 1.21, setrlimit or prlimit on ourselves clears the saved limit
// (syscall.origRlimitNofile) and children inherit the raised one. Started
// before the raise, the command keeps exactly the limits the user gave
// ebpfjail. Rule programs ebpfjail starts later (--sh scripts, a --proc
// restart) inherit the raised limit; they are the user's own and outside
// the jail.
func raiseFileLimit() (unix.Rlimit, error) {
	want := uint64(maxFileLimit)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < want {
			want = n
		}
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return cur, fmt.Errorf("get descriptor limit: %w", err)
	}
	if cur.Cur >= want && cur.Max >= want {
		return cur, nil
	}
	lim := unix.Rlimit{Cur: max(want, cur.Cur), Max: max(want, cur.Max)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		// Not root enough to raise the hard limit: the soft one still helps.
		lim = unix.Rlimit{Cur: cur.Max, Max: cur.Max}
		if err2 := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err2 != nil {
			return cur, fmt.Errorf("raise descriptor limit to %d: %w", want, err)
		}
	}
	return lim, nil
}
