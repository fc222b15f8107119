package proxy

import (
	"bufio"
	"context"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/origin"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// record is what the fake kernel hands out. An alias, because in these
// tests "origin" is the origin server.
type record = origin.Origin

// errNoRecord is the fake kernel's answer for a peer it has no record of.
var errNoRecord = errors.New("no record for peer")

// fakeKernel answers OrigDst from a table, as the BPF map would.
type fakeKernel struct {
	mu   sync.Mutex
	next record
	ok   bool
}

func (f *fakeKernel) set(o record, ok bool) {
	f.mu.Lock()
	f.next, f.ok = o, ok
	f.mu.Unlock()
}

func (f *fakeKernel) OrigDst(netip.AddrPort) (record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		return record{}, errNoRecord
	}
	return f.next, nil
}

// ruleFunc adapts a function to rules.Engine.
type ruleFunc func(*rules.Request) rules.Verdict

func (f ruleFunc) Evaluate(_ context.Context, r *rules.Request) rules.Verdict { return f(r) }
func (f ruleFunc) Close() error                                               { return nil }

func newProxy(t *testing.T, k *fakeKernel, dns func(net.Conn, record), dials *atomic.Int32) *Proxy {
	t.Helper()
	return newProxyWith(t, k, dns, dials, rules.AllowAll())
}

func newProxyWith(t *testing.T, k *fakeKernel, dns func(net.Conn, record), dials *atomic.Int32, e rules.Engine) *Proxy {
	t.Helper()
	d := &net.Dialer{}
	p, err := Listen(Config{
		PeekTimeout: 300 * time.Millisecond,
		Logger:      testutil.DiscardLogger(),
		OrigDst:     k.OrigDst,
		DNS:         dns,
		Rules:       e,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialProxy(t testing.TB, p *Proxy) *net.TCPConn {
	t.Helper()
	v4, _ := p.Ports()
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// httpOrigin serves "hello <path>" and records the requests it saw.
func httpOrigin(t *testing.T) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String()), &seen
}

// get sends one HTTP/1.1 request for path with Host host through the proxy.
func get(t *testing.T, p *Proxy, host, path string) (*http.Response, string) {
	t.Helper()
	c := dialProxy(t, p)
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAllowedRequestIsForwardedToTheOriginalDestination(t *testing.T) {
	origin, seen := httpOrigin(t)
	k := &fakeKernel{}
	var dials atomic.Int32
	var got *rules.Request
	p := newProxyWith(t, k, nil, &dials, ruleFunc(func(r *rules.Request) rules.Verdict {
		got = r
		return rules.Verdict{Allow: true}
	}))
	k.set(record{Dst: origin, PID: 1, Comm: "test"}, true)
	resp, body := get(t, p, origin.String(), "/x?y=1")
	if resp.StatusCode != 200 || body != "hello /x" || seen.Load() != 1 {
		t.Errorf("got %d %q (origin saw %d), want 200 \"hello /x\" once", resp.StatusCode, body, seen.Load())
	}
	want := &rules.Request{URL: "http://" + origin.String() + "/x?y=1", Method: "GET", Scheme: "http",
		Host: "127.0.0.1", Port: int(origin.Port()), Path: "/x", RequesterIP: "127.0.0.1",
		Proc: rules.Proc{PID: 1, Comm: "test"}}
	if got == nil || *got != *want {
		t.Errorf("rule saw %+v, want %+v", got, want)
	}
}

func TestDeniedRequestGets403AndNeverReachesTheOrigin(t *testing.T) {
	origin, seen := httpOrigin(t)
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxyWith(t, k, nil, &dials, ruleFunc(func(*rules.Request) rules.Verdict {
		return rules.Verdict{DenyMessage: "not this one"}
	}))
	k.set(record{Dst: origin}, true)
	resp, body := get(t, p, origin.String(), "/")
	if want := "Request blocked by ebpfjail\nnot this one"; resp.StatusCode != 403 || body != want {
		t.Errorf("got %d %q, want 403 %q", resp.StatusCode, body, want)
	}
	if seen.Load() != 0 || dials.Load() != 0 {
		t.Errorf("origin saw %d requests, %d dials; want none", seen.Load(), dials.Load())
	}
}

func TestNonHTTPConnectionIsReset(t *testing.T) {
	origin, _ := httpOrigin(t)
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(record{Dst: origin}, true)
	c := dialProxy(t, p)
	defer c.Close()
	c.Write([]byte("\x00\x01 not http"))
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("got %v, want a reset", err)
	}
	if dials.Load() != 0 {
		t.Errorf("dials: got %d, want 0", dials.Load())
	}
}

// refused connects to the proxy and reports whether the connection ends in
// a reset (on loopback the RST can even beat connect()'s return).
func refused(t *testing.T, p *Proxy) bool {
	t.Helper()
	v4, _ := p.Ports()
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String())
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c)
	}
	return errors.Is(err, syscall.ECONNRESET)
}

func TestConnectionWithoutARecordIsResetNeverDialed(t *testing.T) {
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(record{}, false)
	if !refused(t, p) {
		t.Error("got a clean close or data, want a reset")
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("dials: got %d, want 0", n)
	}
}

func TestConnectionToTheListenerItselfIsRefused(t *testing.T) {
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	v4, v6 := p.Ports()
	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4),
		netip.AddrPortFrom(netip.MustParseAddr("::1"), v6),
		netip.AddrPortFrom(netip.MustParseAddr("0.0.0.0"), v4),
	} {
		k.set(record{Dst: dst}, true)
		if !refused(t, p) {
			t.Errorf("%v: got no reset, want one", dst)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("dials: got %d, want 0 (a loop)", n)
	}
}

func TestPort53GoesToTheDNSShimWithTheProcess(t *testing.T) {
	k := &fakeKernel{}
	var dials atomic.Int32
	got := make(chan record, 1)
	p := newProxy(t, k, func(c net.Conn, who record) {
		got <- who
		c.Write([]byte("dns"))
	}, &dials)
	want := record{Dst: netip.MustParseAddrPort("203.0.113.53:53"), PID: 7, Comm: "dig"}
	k.set(want, true)
	c := dialProxy(t, p)
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "dns" {
		t.Errorf("reply: got %q, want %q", b, "dns")
	}
	if who := <-got; who != want {
		t.Errorf("origin: got %+v, want %+v", who, want)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("dials: got %d, want 0", n)
	}
}

func TestUnreachableUpstreamGets502(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(record{Dst: dead}, true)
	resp, body := get(t, p, dead.String(), "/")
	if resp.StatusCode != 502 || !strings.HasPrefix(body, "Upstream error: ") {
		t.Errorf("got %d %q, want 502 with the reason", resp.StatusCode, body)
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	origin, _ := httpOrigin(t)
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(record{Dst: origin}, true)
	c := dialProxy(t, p)
	defer c.Close()
	// A keep-alive connection left open after one request.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", origin)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with a connection open")
	}
}

func TestSilentClientIsDroppedAfterThePeekDeadline(t *testing.T) {
	origin, _ := httpOrigin(t)
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(record{Dst: origin}, true)
	before := runtime.NumGoroutine()
	c := dialProxy(t, p)
	defer c.Close()
	start := time.Now()
	n, err := c.Read(make([]byte, 1)) // says nothing, waits
	if n != 0 || err == nil {
		t.Fatalf("read: got %d, %v; want the proxy to close", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dropped after %v, want about the 300ms deadline", d)
	}
	// The connection's goroutine is gone too.
	if got := testutil.WaitGoroutines(before, 5*time.Second); got > before {
		t.Errorf("goroutines: got %d, want at most %d as before the client came", got, before)
	}
}
