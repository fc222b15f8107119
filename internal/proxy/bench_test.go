package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
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
	p, err := Listen(Config{Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, Rules: rules.AllowAll()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	echo := netip.MustParseAddrPort(srv.Listener.Addr().String())
	k.set(record{Dst: echo}, true)
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

// mitmBench is a proxy with a real CA in front of a TLS origin on
// loopback, and clients for both paths: the in-process share of the
// MITM's cost, without BPF or a jail (the kernel record is faked).
type mitmBench struct {
	origin  *httptest.Server
	proxied *http.Client // dials the proxy's listener, trusts its CA
	direct  *http.Client // dials the origin, trusts its certificate
	url     string
}

func newMITMBench(b *testing.B, h http.Handler) *mitmBench {
	b.Helper()
	origin := httptest.NewUnstartedServer(h)
	origin.EnableHTTP2 = true
	origin.StartTLS()
	b.Cleanup(origin.Close)
	ca, err := tlsca.LoadOrCreate(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	originRoots := origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	k := &fakeKernel{}
	p, err := Listen(Config{Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, Rules: rules.AllowAll(), CA: ca, RootCAs: originRoots})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	dst := netip.MustParseAddrPort(origin.Listener.Addr().String())
	k.set(record{Dst: dst}, true)
	v4, _ := p.Ports()
	proxyAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	caPool := x509.NewCertPool()
	caPool.AddCert(ca.Certificate())
	client := func(addr string, roots *x509.CertPool) *http.Client {
		d := &net.Dialer{}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost: 64,
		}
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	return &mitmBench{
		origin:  origin,
		proxied: client(proxyAddr, caPool),
		direct:  client(dst.String(), originRoots),
		url:     "https://" + dst.String() + "/",
	}
}

func getAll(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
	}
}

// BenchmarkKeepAliveHTTPS is the per-request cost of a kept-alive HTTPS
// (HTTP/1.1) request, 8 at a time, direct and through the MITM: profile
// the MITM with -run '^$' -bench KeepAliveHTTPS/mitm -cpuprofile.
func BenchmarkKeepAliveHTTPS(b *testing.B) {
	mb := newMITMBench(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 200))
	}))
	for _, side := range []struct {
		name string
		c    *http.Client
	}{{"direct", mb.direct}, {"mitm", mb.proxied}} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4) // 8 clients on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					getAll(b, side.c, mb.url)
				}
			})
		})
	}
}

// BenchmarkDownloadHTTPS moves 16 MiB per iteration, direct and through
// the MITM.
func BenchmarkDownloadHTTPS(b *testing.B) {
	const size = 16 << 20
	chunk := make([]byte, 32<<10)
	mb := newMITMBench(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for n := size; n > 0; n -= len(chunk) {
			w.Write(chunk)
		}
	}))
	for _, side := range []struct {
		name string
		c    *http.Client
	}{{"direct", mb.direct}, {"mitm", mb.proxied}} {
		b.Run(side.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				getAll(b, side.c, mb.url)
			}
		})
	}
}
