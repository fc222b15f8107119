package testutil

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"
)

// DiscardLogger is a logger that writes nowhere, for code under test that
// must be given one.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// WaitGoroutines waits up to within for the goroutine count to come back
// down to baseline and returns the last count seen: goroutines that just
// finished may take a moment to be gone, so a leak check compares the
// result with baseline instead of sampling once.
func WaitGoroutines(baseline int, within time.Duration) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(within); n > baseline && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// TCPPair returns both ends of a loopback TCP connection, closed when the
// test ends. Unlike a net.Pipe it buffers, so a peer that aborts half way
// (and whatever it sends last) does not deadlock against one still writing.
func TCPPair(tb testing.TB) (client, server *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	a := <-ch
	if a.err != nil {
		cc.Close()
		tb.Fatalf("accept: %v", a.err)
	}
	tb.Cleanup(func() {
		cc.Close()
		a.c.Close()
	})
	return cc.(*net.TCPConn), a.c.(*net.TCPConn)
}

// Serve accepts connections on ln until it is closed, and handles each in a
// goroutine of its own, closing the connection when handle returns.
func Serve(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}
