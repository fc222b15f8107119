package supervisor

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// statsSignal makes a supervisor print one stats line on stderr. It
// is still forwarded to the command too (as sudo forwards it), so a command
// that reports progress on SIGUSR1 (dd) keeps doing so. A signal, not a
// socket: only root (or ebpfjail's own user) can send it, and the jail gets
// no new surface to reach.
var statsSignal = unix.SIGUSR1

// WriteStats writes one line about ebpfjail's own resources:
//
//	ebpfjail: stats: goroutines=12 open_fds=15 heap_inuse_bytes=4194304 rss_bytes=20971520 active_connections=0
//
// Sizes are in bytes and every value is an integer, so a script (or a
// test looking for leaks) can read it; active_connections are the jail's
// client connections the proxy is serving.
func WriteStats(w io.Writer, active int64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms) // stops the world briefly; only on request
	fmt.Fprintf(w, "ebpfjail: stats: goroutines=%d open_fds=%d heap_inuse_bytes=%d rss_bytes=%d active_connections=%d\n",
		runtime.NumGoroutine(), openFDs(), ms.HeapInuse, rssBytes(), active)
}

// openFDs counts this process's open descriptors (-1 if /proc is missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory's own descriptor, open while reading
}

// rssBytes is this process's resident set size (-1 if /proc is missing).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}
