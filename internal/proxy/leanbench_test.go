package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// BenchmarkKeepAliveHTTP is the per-request cost of a kept-alive plain
// HTTP/1.1 request through the proxy, one client at a time and 32 at
// once, next to the same load sent direct.
func BenchmarkKeepAliveHTTP(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 200))
	}))
	defer origin.Close()
	k := &fakeKernel{}
	p, err := Listen(Config{Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, Rules: rules.AllowAll()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	dst := netip.MustParseAddrPort(origin.Listener.Addr().String())
	k.set(record{Dst: dst}, true)
	v4, _ := p.Ports()
	proxyAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	client := func(addr string) *http.Client {
		d := &net.Dialer{}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 64,
		}
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	url := "http://" + dst.String() + "/"
	for _, side := range []struct {
		name string
		c    *http.Client
	}{{"direct", client(dst.String())}, {"proxy", client(proxyAddr)}} {
		for _, conc := range []int{1, 32} {
			b.Run(side.name+"/c="+itoa(conc), func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
				if conc == 1 {
					for b.Loop() {
						getAll(b, side.c, url)
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						getAll(b, side.c, url)
					}
				})
			})
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
