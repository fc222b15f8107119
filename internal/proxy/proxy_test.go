package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
)

// fakeKernel answers OrigDst from a table, as the BPF map would.
type fakeKernel struct {
	mu   sync.Mutex
	next bpf.Origin
	ok   bool
}

func (f *fakeKernel) set(o bpf.Origin, ok bool) {
	f.mu.Lock()
	f.next, f.ok = o, ok
	f.mu.Unlock()
}

func (f *fakeKernel) OrigDst(netip.AddrPort) (bpf.Origin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		return bpf.Origin{}, bpf.ErrNoOrigDst
	}
	return f.next, nil
}

func newProxy(t *testing.T, k *fakeKernel, dns func(net.Conn, bpf.Origin), dials *atomic.Int32) *Proxy {
	t.Helper()
	d := &net.Dialer{}
	p, err := Listen(Config{
		Logger:  discard(),
		OrigDst: k.OrigDst,
		DNS:     dns,
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

func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c) // until the client half-closes
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func dialProxy(t *testing.T, p *Proxy) *net.TCPConn {
	t.Helper()
	v4, _ := p.Ports()
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func TestForwardsBothWaysToTheOriginalDestination(t *testing.T) {
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(bpf.Origin{Dst: echoServer(t), PID: 1, Comm: "test"}, true)
	c := dialProxy(t, p)
	defer c.Close()
	msg := []byte("through the jail")
	c.Write(msg)
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != string(msg) {
		t.Errorf("echo: got %q, %v; want %q", got, err, msg)
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
	k.set(bpf.Origin{}, false)
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
		k.set(bpf.Origin{Dst: dst}, true)
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
	got := make(chan bpf.Origin, 1)
	p := newProxy(t, k, func(c net.Conn, who bpf.Origin) {
		got <- who
		c.Write([]byte("dns"))
	}, &dials)
	want := bpf.Origin{Dst: netip.MustParseAddrPort("203.0.113.53:53"), PID: 7, Comm: "dig"}
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

func TestUnreachableUpstreamResetsTheClient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(bpf.Origin{Dst: dead}, true)
	if !refused(t, p) {
		t.Error("got no reset, want one")
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	k := &fakeKernel{}
	var dials atomic.Int32
	p := newProxy(t, k, nil, &dials)
	k.set(bpf.Origin{Dst: echoServer(t)}, true)
	c := dialProxy(t, p)
	defer c.Close()
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	io.ReadFull(c, buf)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with a connection open")
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
