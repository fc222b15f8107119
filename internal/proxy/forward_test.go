package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// mitm is a proxy with a real CA in front of origin, which it reaches as
// example.com (a name httptest's certificate holds), as the kernel would
// have it: every connection's original destination is origin.
type mitm struct {
	p      *Proxy
	addr   string         // the proxy's IPv4 listener
	roots  *x509.CertPool // the proxy's CA, as a jailed client trusts it
	origin netip.AddrPort
	evals  atomic.Int32 // rule evaluations
}

func newMITM(t *testing.T, origin *httptest.Server) *mitm {
	t.Helper()
	ca, err := tlsca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{origin: netip.MustParseAddrPort(origin.Listener.Addr().String()), roots: x509.NewCertPool()}
	m.roots.AddCert(ca.Certificate())
	var originRoots *x509.CertPool
	if origin.TLS != nil {
		originRoots = origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	}
	k := &fakeKernel{}
	k.set(record{Dst: m.origin}, true)
	m.p, err = Listen(Config{
		Logger:  testutil.DiscardLogger(),
		OrigDst: k.OrigDst,
		Rules: ruleFunc(func(*rules.Request) rules.Verdict {
			m.evals.Add(1)
			return rules.Verdict{Allow: true}
		}),
		CA:       ca,
		RootCAs:  originRoots,
		Resolver: &Resolver{Pins: map[string][]netip.Addr{"example.com": {m.origin.Addr()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.p.Close() })
	v4, _ := m.p.Ports()
	m.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	return m
}

// client dials the proxy whatever the URL says, as a jailed client's
// connect() ends up there.
func (m *mitm) client(t *testing.T, cfg *tls.Config, h2 bool) *http.Client {
	t.Helper()
	d := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, m.addr)
		},
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func getBody(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

// The forwarder no longer flushes every write (a syscall and a TLS record
// each); a response of unknown length must still reach the client as it is
// written: server-sent events, long polls, progress output.
func TestStreamedResponsesReachTheClientBeforeTheyEnd(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "rest\n")
	}))
	defer origin.Close()
	defer close(release)
	m := newMITM(t, origin)
	for _, path := range []string{"/chunked", "/sse"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", m.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, m.origin)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response head: %v", err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first line while the origin still writes: got %q, %v; want %q", line, err, "first\n")
			}
		})
	}
}

// HTTP/1.1 clients are forwarded over an HTTP/1.1 connection pool (one
// upstream connection per busy client connection, not all multiplexed on
// one), HTTP/2 clients over HTTP/2.
func TestUpstreamProtocolFollowsTheClients(t *testing.T) {
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	origin.EnableHTTP2 = true
	origin.StartTLS()
	defer origin.Close()
	m := newMITM(t, origin)
	url := fmt.Sprintf("https://example.com:%d/", m.origin.Port())
	for _, tc := range []struct {
		h2               bool
		client, upstream string
	}{{false, "HTTP/1.1", "HTTP/1.1"}, {true, "HTTP/2.0", "HTTP/2.0"}} {
		t.Run(tc.client, func(t *testing.T) {
			resp, body := getBody(t, m.client(t, &tls.Config{RootCAs: m.roots}, tc.h2), url)
			if resp.Proto != tc.client {
				t.Fatalf("client side: got %s, want %s", resp.Proto, tc.client)
			}
			if body != tc.upstream {
				t.Errorf("the origin saw %q, want %q", body, tc.upstream)
			}
		})
	}
}

// All MITM'd connections share one tls.Config: each still gets a leaf for
// its own name (the SNI, else where it connected), and a client that keeps
// sessions resumes them, with every request still decided by the rule.
func TestMITMCertificatesNameTheirHostAndSessionsResume(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	m := newMITM(t, origin)
	for _, tc := range []struct{ sni, want string }{
		{"example.com", "example.com"},
		{"other.test", "other.test"},
		{"", "127.0.0.1"}, // no SNI: the original destination
	} {
		c, err := tls.Dial("tcp", m.addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake with SNI %q: %v", tc.sni, err)
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		var names []string
		names = append(names, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if !slices.Equal(names, []string{tc.want}) {
			t.Errorf("SNI %q: certificate for %v, want [%s]", tc.sni, names, tc.want)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.roots, DNSName: tc.want}); err != nil {
			t.Errorf("SNI %q: leaf does not verify against the CA: %v", tc.sni, err)
		}
	}

	cfg := &tls.Config{RootCAs: m.roots, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	c := m.client(t, cfg, false)
	url := fmt.Sprintf("https://example.com:%d/", m.origin.Port())
	before := m.evals.Load()
	var resumed []bool
	for range 3 {
		resp, body := getBody(t, c, url)
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "ok")
		}
		resumed = append(resumed, resp.TLS.DidResume)
	}
	if !slices.Equal(resumed, []bool{false, true, true}) {
		t.Errorf("resumed per connection: got %v, want [false true true]", resumed)
	}
	if got := m.evals.Load() - before; got != 3 {
		t.Errorf("rule evaluations for 3 requests on 3 connections: got %d, want 3", got)
	}
}
