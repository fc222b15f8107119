package proxy

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// leanWatchAfter is how long a wait on the upstream may last before the
// client's socket is watched for its going away.
const leanWatchAfter = 200 * time.Millisecond

// clientWatch closes the upstream of a request whose client went away
// while the request waited on it (a long poll, a held stream), as the
// existing path's request context does, so the origin sees it go. It asks
// the kernel (a peek, nothing is read) and only once a wait passed
// leanWatchAfter: a quick exchange starts no goroutine. Bytes from the
// client (a pipelined request, a TLS alert) end the watch: they are not a
// going away.
type clientWatch struct {
	raw   *net.TCPConn
	timer *time.Timer
	// wg counts the armed count and the watch it may start.
	wg    sync.WaitGroup
	armed bool
	mu    sync.Mutex
	up    net.Conn
	gone  bool // written by the watch, read after wg.Wait
}

func newClientWatch(client net.Conn) *clientWatch {
	return &clientWatch{raw: tcpConn(client)}
}

// arm starts the count before a wait on up.
func (w *clientWatch) arm(up net.Conn) {
	if w == nil || w.raw == nil {
		return
	}
	w.mu.Lock()
	w.up = up
	w.mu.Unlock()
	w.armed = true
	// The client's read deadline (the head's, the body's) would end the
	// watch; the next read sets its own.
	w.raw.SetReadDeadline(time.Time{})
	w.wg.Add(1)
	if w.timer == nil {
		w.timer = time.AfterFunc(leanWatchAfter, w.watch)
		return
	}
	w.timer.Reset(leanWatchAfter)
}

// disarm ends the count, or the watch it started, once the wait is over;
// it reports whether the client went away. A watch that has not begun
// yet finds the deadline passed and ends at once.
func (w *clientWatch) disarm() bool {
	if w == nil || !w.armed {
		return false
	}
	w.armed = false
	if w.timer.Stop() {
		w.wg.Done()
		return false
	}
	w.raw.SetReadDeadline(time.Unix(1, 0))
	w.wg.Wait()
	return w.gone
}

func (w *clientWatch) watch() {
	defer w.wg.Done()
	rc, err := w.raw.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	gone := false
	rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if errors.Is(err, syscall.EAGAIN) {
			return false
		}
		gone = (n == 0 && err == nil) || errors.Is(err, syscall.ECONNRESET)
		return true
	})
	if gone {
		w.gone = true
		w.mu.Lock()
		w.up.Close()
		w.mu.Unlock()
	}
}
