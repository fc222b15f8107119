package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// short are timeouts a test can wait out.
var short = Timeouts{
	Header:       300 * time.Millisecond,
	ClientIdle:   300 * time.Millisecond,
	UpstreamIdle: 300 * time.Millisecond,
	TunnelIdle:   300 * time.Millisecond,
}

// timeoutProxy is an allow-all proxy with short timeouts whose kernel
// says every connection went to dst; tcp lets non-HTTP through.
func timeoutProxy(t *testing.T, dst netip.AddrPort, tcp bool) *Proxy {
	t.Helper()
	k := &fakeKernel{}
	k.set(record{Dst: dst, PID: 1, Comm: "test"}, true)
	p, err := Listen(Config{
		PeekTimeout: 300 * time.Millisecond,
		Timeouts:    short,
		Logger:      testutil.DiscardLogger(),
		OrigDst:     k.OrigDst,
		Rules:       rules.AllowAll(),
		TCP:         tcp,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// goroutinesBackTo waits for the goroutine count to fall back to before
// (idle upstream connections closed first: they are a pool, not a leak).
func goroutinesBackTo(t *testing.T, p *Proxy, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, tr := range p.upstreams {
			tr.CloseIdleConnections()
		}
		p.lean.closeIdle()
		got := runtime.NumGoroutine()
		if got <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: got %d, want at most %d as before\n%s", got, before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawOrigin accepts TCP connections and hands each to serve.
func rawOrigin(t *testing.T, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	testutil.Serve(ln, serve)
	return netip.MustParseAddrPort(ln.Addr().String())
}

// endsWithin reports whether c's peer ends the connection (EOF or an
// error other than our own deadline) within d, reading what comes.
func endsWithin(c net.Conn, d time.Duration) (string, bool) {
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	var ne net.Error
	return string(b), !(errors.As(err, &ne) && ne.Timeout())
}

func TestStalledRequestHeadIsDroppedAtTheHeaderTimeout(t *testing.T) {
	origin, _ := httpOrigin(t)
	p := timeoutProxy(t, origin, false)
	before := runtime.NumGoroutine()
	c := dialProxy(t, p)
	defer c.Close()
	// One whole request keeps the connection; the next one's head stalls.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", origin)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	fmt.Fprintf(c, "GET /second HTTP/1.1\r\nHost: %s\r\nX-Slow: ", origin)
	if _, ended := endsWithin(c, 5*time.Second); !ended {
		t.Errorf("a head stalled for 5s is still open; want it dropped after the %v header timeout", short.Header)
	}
	c.Close()
	goroutinesBackTo(t, p, before)
}

// bodyOrigin answers with the length of the request body it read, or
// records that reading it failed.
func bodyOrigin(t *testing.T) (netip.AddrPort, chan string) {
	t.Helper()
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			got <- "error"
			return
		}
		got <- string(b)
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String()), got
}

func TestStalledRequestBodyIsDroppedAndATricklingOneGoesOn(t *testing.T) {
	origin, got := bodyOrigin(t)
	p := timeoutProxy(t, origin, false)
	before := runtime.NumGoroutine()

	t.Run("stalled", func(t *testing.T) {
		c := dialProxy(t, p)
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n0123456789", origin)
		if _, ended := endsWithin(c, 5*time.Second); !ended {
			t.Errorf("a body stalled for 5s is still open; want it dropped after the %v client idle timeout", short.ClientIdle)
		}
		select {
		case g := <-got:
			if g != "error" {
				t.Errorf("origin read the body %q; want a failed read (a cut body, not a short one passed off as whole)", g)
			}
		case <-time.After(5 * time.Second):
			t.Error("the origin is still waiting for the body")
		}
	})
	t.Run("trickling", func(t *testing.T) {
		// Ten bytes, one every third of the idle timeout: three times the
		// timeout in total, never idle for one.
		c := dialProxy(t, p)
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 10\r\nConnection: close\r\n\r\n", origin)
		for i := range 10 {
			time.Sleep(short.ClientIdle / 3)
			fmt.Fprintf(c, "%d", i)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "got 10 bytes" {
			t.Errorf("got %d %q, want 200 \"got 10 bytes\"", resp.StatusCode, b)
		}
		if g := <-got; g != "0123456789" {
			t.Errorf("origin got %q, want the whole body", g)
		}
	})
	goroutinesBackTo(t, p, before)
}

func TestSilentUpstreamGets504AndATricklingOneIsNotCut(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	origin := rawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch r.URL.Path {
		case "/silent":
			<-release // accepts, reads, never answers
		case "/stall":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
			<-release
		case "/trickle":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
			for i := range 10 {
				time.Sleep(short.UpstreamIdle / 3)
				fmt.Fprintf(c, "%d", i)
			}
		}
	})
	p := timeoutProxy(t, origin, false)
	before := runtime.NumGoroutine()
	request := func(path string) (*http.Response, string, error) {
		c := dialProxy(t, p)
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, origin)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, "", err
		}
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	resp, body, err := request("/silent")
	if err != nil || resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "no response from upstream for 300ms") {
		t.Errorf("silent upstream: got %v %q %v, want 504 naming the idle time", resp, body, err)
	}
	// What came before the stall may still sit in the writer's buffer (a
	// known-length body is not flushed per write): a prefix, then an error.
	_, body, err = request("/stall")
	if err == nil || !strings.HasPrefix("01234", body) {
		t.Errorf("upstream stalled mid-body: got %q, %v; want at most the 5 bytes sent, then an error (not a clean end)", body, err)
	}
	resp, body, err = request("/trickle")
	if err != nil || resp.StatusCode != 200 || body != "0123456789" {
		t.Errorf("trickling upstream: got %v %q %v, want 200 and all 10 bytes", resp, body, err)
	}
	free() // the origin's own handlers
	goroutinesBackTo(t, p, before)
}

func TestIdleTunnelIsClosedAndABusyOneIsNot(t *testing.T) {
	checkTunnelIdle(t, func(origin netip.AddrPort) *Proxy { return timeoutProxy(t, origin, true) })
}

// checkTunnelIdle runs an idle and a busy tunnel through the proxy that
// newProxy makes for an origin.
func checkTunnelIdle(t *testing.T, newProxy func(origin netip.AddrPort) *Proxy) {
	origin := rawOrigin(t, func(c net.Conn) {
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			return
		}
		if b[0] == 'q' {
			io.Copy(io.Discard, c) // says nothing back
			return
		}
		// Busy one way only: a byte every third of the idle timeout for
		// three times the timeout; the client sends nothing more.
		for i := range 9 {
			time.Sleep(short.TunnelIdle / 3)
			fmt.Fprintf(c, "%d", i)
		}
	})
	p := newProxy(origin)
	before := runtime.NumGoroutine()

	c := dialProxy(t, p)
	c.Write([]byte("q\x00\x01 not http"))
	if _, ended := endsWithin(c, 5*time.Second); !ended {
		t.Errorf("a tunnel idle for 5s is still open; want it closed after %v to %v", short.TunnelIdle, 2*short.TunnelIdle)
	}
	c.Close()

	c = dialProxy(t, p)
	c.Write([]byte("b\x00\x01 not http"))
	if got, _ := endsWithin(c, 10*time.Second); got != "012345678" {
		t.Errorf("busy tunnel: got %q, want all of \"012345678\" (traffic one way keeps it open)", got)
	}
	c.Close()
	goroutinesBackTo(t, p, before)
}

func TestHalfCloseLetsTheOtherDirectionFinish(t *testing.T) {
	// The origin reads until the client is done sending, then answers
	// with more than a socket buffer and closes.
	reply := bytes.Repeat([]byte("r"), 4<<20)
	origin := rawOrigin(t, func(c net.Conn) {
		got, _ := io.ReadAll(c)
		fmt.Fprintf(c, "read %d bytes\n", len(got))
		c.Write(reply)
	})
	p := timeoutProxy(t, origin, true)
	check := func(t *testing.T, c net.Conn, r io.Reader) {
		t.Helper()
		msg := "\x00\x01 not http, then EOF"
		c.Write([]byte(msg))
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(r)
		want := fmt.Sprintf("read %d bytes\n", len(msg)) + string(reply)
		if err != nil || string(b) != want {
			t.Errorf("got %d bytes (%q...), %v; want the origin's whole %d-byte answer", len(b), b[:min(len(b), 20)], err, len(want))
		}
	}
	t.Run("tcp-splice", func(t *testing.T) {
		c := dialProxy(t, p)
		defer c.Close()
		check(t, c, c)
	})
	t.Run("connect-tunnel", func(t *testing.T) {
		c := dialProxy(t, p)
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: got %v, %v; want 200", resp, err)
		}
		check(t, c, br)
	})
}

func TestUpstreamResetInATunnelEndsTheClientSide(t *testing.T) {
	origin := rawOrigin(t, func(c net.Conn) {
		b := make([]byte, 4)
		io.ReadFull(c, b)
		io.WriteString(c, "partial")
		c.(*net.TCPConn).SetLinger(0) // reset
	})
	p := timeoutProxy(t, origin, true)
	before := runtime.NumGoroutine()
	c := dialProxy(t, p)
	defer c.Close()
	c.Write([]byte("\x00\x01\x02\x03"))
	got, ended := endsWithin(c, 5*time.Second)
	if !ended || got != "partial" {
		t.Errorf("got %q, ended %v; want \"partial\" and the connection ended, not hanging", got, ended)
	}
	c.Close()
	goroutinesBackTo(t, p, before)
}
