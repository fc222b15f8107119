package proxy

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// splicedTimeoutProxy is timeoutProxy (--tcp) with the kernel splice; joins
// counts the tunnels joined in it.
func splicedTimeoutProxy(t *testing.T, dst netip.AddrPort, joins *atomic.Int64) *Proxy {
	t.Helper()
	testutil.RequireRoot(t)
	s, err := bpf.LoadSplicer()
	if err != nil {
		t.Fatalf("LoadSplicer: %v", err)
	}
	k := &fakeKernel{}
	k.set(record{Dst: dst, PID: 1, Comm: "test"}, true)
	p, err := Listen(Config{
		PeekTimeout: short.Header,
		Timeouts:    short,
		Logger:      testutil.DiscardLogger(),
		OrigDst:     k.OrigDst,
		Rules:       rules.AllowAll(),
		TCP:         true,
		Splice: func(client, up *net.TCPConn) (SplicedPair, error) {
			pair, err := s.Join(client, up)
			if err != nil {
				return nil, err
			}
			joins.Add(1)
			return pair, nil
		},
	})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); s.Close() })
	return p
}

func TestPrivilegedKernelSplicedTunnelIsClosedWhenIdleAndNotWhenBusy(t *testing.T) {
	var joins atomic.Int64
	checkTunnelIdle(t, func(origin netip.AddrPort) *Proxy { return splicedTimeoutProxy(t, origin, &joins) })
	if n := joins.Load(); n != 2 {
		t.Errorf("tunnels joined in the kernel splice: got %d, want 2 (the idle one and the busy one)", n)
	}
}

// BenchmarkTunnelDownload moves 64 MiB from an origin to a client through
// an allowed --tcp tunnel, spliced in the kernel and copied in user space
// (splice(2)); b.SetBytes makes the MB/s comparable.
func BenchmarkTunnelDownload(b *testing.B) {
	testutil.RequireRoot(b)
	const size = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	chunk := make([]byte, 1<<20)
	testutil.Serve(ln, func(c net.Conn) {
		c.Read(make([]byte, 64))
		for range size / len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	origin := netip.MustParseAddrPort(ln.Addr().String())
	s, err := bpf.LoadSplicer()
	if err != nil {
		b.Fatalf("LoadSplicer: %v", err)
	}
	defer s.Close()
	for _, kernel := range []bool{true, false} {
		name := "user-space"
		cfg := benchTunnelConfig(origin)
		if kernel {
			name = "kernel"
			cfg.Splice = func(client, up *net.TCPConn) (SplicedPair, error) { return s.Join(client, up) }
		}
		b.Run(name, func(b *testing.B) {
			p, err := Listen(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.SetBytes(size)
			buf := make([]byte, 256<<10)
			for b.Loop() {
				c := dialProxy(b, p)
				c.Write([]byte("\x00\x01 not http"))
				var n int64
				for n < size {
					m, err := c.Read(buf)
					n += int64(m)
					if err != nil {
						b.Fatalf("after %d bytes: %v", n, err)
					}
				}
				c.Close()
			}
		})
	}
}

// benchTunnelConfig is an allow-all --tcp proxy whose kernel says every
// connection went to dst.
func benchTunnelConfig(dst netip.AddrPort) Config {
	k := &fakeKernel{}
	k.set(record{Dst: dst, PID: 1, Comm: "bench"}, true)
	return Config{Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, Rules: rules.AllowAll(), TCP: true}
}
