package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// roundTrip makes one HTTP request on a new connection to addr (the
// request names host): the per-connection cost a jailed client pays.
func roundTrip(b *testing.B, addr, host string) time.Duration {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	if _, err := io.Copy(io.Discard, c); err != nil {
		b.Fatal(err)
	}
	c.Close()
	return time.Since(start)
}

// BenchmarkNewConnectionVsDirect interleaves a direct and a proxied HTTP
// request on a new connection per iteration (so machine noise hits both
// alike) and reports the proxied cost as a multiple of the direct one. No
// BPF: this is the listener's own share (classify, rule, forward).
func BenchmarkNewConnectionVsDirect(b *testing.B) {
	k := &fakeKernel{}
	p, err := Listen(Config{Logger: discard(), OrigDst: k.OrigDst, Rules: rules.AllowAll()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	echo := netip.MustParseAddrPort(srv.Listener.Addr().String())
	k.set(bpf.Origin{Dst: echo}, true)
	v4, _ := p.Ports()
	proxied := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	var direct, viaProxy time.Duration
	b.ResetTimer()
	for b.Loop() {
		direct += roundTrip(b, echo.String(), echo.String())
		viaProxy += roundTrip(b, proxied, echo.String())
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-us/conn")
	b.ReportMetric(float64(viaProxy.Microseconds())/float64(b.N), "proxy-us/conn")
	if direct > 0 {
		b.ReportMetric(float64(viaProxy)/float64(direct), "x-direct")
	}
}
