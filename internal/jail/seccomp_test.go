//go:build linux

package jail

import (
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// underFilter runs fn on a thread that carries the jail's seccomp filter
// (the thread is discarded afterwards).
func underFilter(t *testing.T, fn func()) {
	t.Helper()
	raw, err := socketFilter()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- err
			return
		}
		if err := installFilter(raw); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSeccompFilterAllowsOnlyFamiliesTheJailSteers(t *testing.T) {
	type try struct {
		name        string
		domain, typ int
		want        error // nil: the socket is made
	}
	tries := []try{
		{"unix", unix.AF_UNIX, unix.SOCK_STREAM, nil},
		{"inet tcp", unix.AF_INET, unix.SOCK_STREAM, nil},
		{"inet6 udp", unix.AF_INET6, unix.SOCK_DGRAM, nil},
		{"netlink", unix.AF_NETLINK, unix.SOCK_DGRAM, nil},
		{"vsock", unix.AF_VSOCK, unix.SOCK_STREAM, unix.EAFNOSUPPORT},
		{"packet", unix.AF_PACKET, unix.SOCK_DGRAM, unix.EAFNOSUPPORT},
		{"tipc", unix.AF_TIPC, unix.SOCK_STREAM, unix.EAFNOSUPPORT},
		{"rds", unix.AF_RDS, unix.SOCK_SEQPACKET, unix.EAFNOSUPPORT},
		{"alg", unix.AF_ALG, unix.SOCK_SEQPACKET, unix.EAFNOSUPPORT},
	}
	got := make([]error, len(tries))
	var uring error
	underFilter(t, func() {
		for i, tr := range tries {
			fd, err := unix.Socket(tr.domain, tr.typ|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			got[i] = err
		}
		params := make([]byte, 120)
		_, _, errno := unix.Syscall(425, 4, uintptr(unsafePointer(params)), 0)
		if errno != 0 {
			uring = errno
		}
	})
	for i, tr := range tries {
		if tr.want == nil && got[i] != nil && !errors.Is(got[i], unix.EPERM) && !errors.Is(got[i], unix.EACCES) {
			t.Errorf("%s: got %v, want the socket made (or refused by the kernel, not the filter)", tr.name, got[i])
		}
		if tr.want != nil && !errors.Is(got[i], tr.want) {
			t.Errorf("%s: got %v, want %v", tr.name, got[i], tr.want)
		}
	}
	if !errors.Is(uring, unix.EPERM) {
		t.Errorf("io_uring_setup: got %v, want EPERM", uring)
	}
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
