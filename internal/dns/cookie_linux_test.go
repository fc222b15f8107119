package dns

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// socketCookie returns SO_COOKIE of a Go socket.
func socketCookie(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn(): %v", err)
	}
	var cookie uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		t.Fatalf("Control(): %v", err)
	}
	if serr != nil {
		t.Fatalf("getsockopt(SO_COOKIE): %v", serr)
	}
	return cookie
}
