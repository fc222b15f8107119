package proxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
)

// roundTrip opens a connection to addr, sends one byte, reads it back and
// closes: the per-connection cost a jailed client pays.
func roundTrip(b *testing.B, addr string) time.Duration {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	buf := []byte{'x'}
	if _, err := c.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
	c.Close()
	return time.Since(start)
}

// BenchmarkNewConnectionVsDirect interleaves a direct and a proxied
// connection per iteration (so machine noise hits both alike) and reports
// the proxied cost as a multiple of the direct one. No BPF: this is the
// listener's own share of the cost.
func BenchmarkNewConnectionVsDirect(b *testing.B) {
	k := &fakeKernel{}
	p, err := Listen(Config{Logger: discard(), OrigDst: k.OrigDst})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	echo := benchEcho(b)
	k.set(bpf.Origin{Dst: echo}, true)
	v4, _ := p.Ports()
	proxied := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	var direct, viaProxy time.Duration
	b.ResetTimer()
	for b.Loop() {
		direct += roundTrip(b, echo.String())
		viaProxy += roundTrip(b, proxied)
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-us/conn")
	b.ReportMetric(float64(viaProxy.Microseconds())/float64(b.N), "proxy-us/conn")
	if direct > 0 {
		b.ReportMetric(float64(viaProxy)/float64(direct), "x-direct")
	}
}

func benchEcho(b *testing.B) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
