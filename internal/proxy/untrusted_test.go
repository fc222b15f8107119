package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// eventProxy is a MITM proxy in front of origin whose events are kept.
type eventProxy struct {
	addr  string
	roots *x509.CertPool
	mu    sync.Mutex
	got   []event.Event
}

func newEventProxy(t *testing.T, origin *httptest.Server, rule func(*rules.Request) rules.Verdict) *eventProxy {
	t.Helper()
	ca, err := tlsca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ep := &eventProxy{roots: x509.NewCertPool()}
	ep.roots.AddCert(ca.Certificate())
	dst := netip.MustParseAddrPort(origin.Listener.Addr().String())
	k := &fakeKernel{}
	k.set(record{Dst: dst}, true)
	p, err := Listen(Config{
		Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, Rules: ruleFunc(rule), CA: ca,
		RootCAs:  origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
		Resolver: &Resolver{Pins: map[string][]netip.Addr{"example.com": {dst.Addr()}}},
		Events: func(e event.Event) {
			ep.mu.Lock()
			ep.got = append(ep.got, e)
			ep.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	v4, _ := p.Ports()
	ep.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	return ep
}

// next waits for the next event of type typ.
func (ep *eventProxy) next(t *testing.T, typ string) event.Event {
	t.Helper()
	for range 200 {
		ep.mu.Lock()
		for i, e := range ep.got {
			if e.Type == typ {
				ep.got = append(ep.got[:i], ep.got[i+1:]...)
				ep.mu.Unlock()
				return e
			}
		}
		ep.mu.Unlock()
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no %s event", typ)
	return event.Event{}
}

// closeAfterRead closes the connection once the server's first flight has
// arrived: a client that looked at the certificate and hung up.
type closeAfterRead struct{ net.Conn }

func (c closeAfterRead) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.Conn.Close()
	return n, err
}

// A client that rejects the CA (an alert, or a close right after the
// certificate) is a class of its own; any other handshake failure is not.
func TestClientThatDoesNotTrustTheCAIsItsOwnHandshakeFailure(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	ep := newEventProxy(t, origin, func(*rules.Request) rules.Verdict { return rules.Verdict{Allow: true} })
	handshake := func(cfg *tls.Config, wrap func(net.Conn) net.Conn) {
		c, err := net.Dial("tcp", ep.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tc := tls.Client(wrap(c), cfg)
		if err := tc.Handshake(); err == nil {
			t.Fatal("the handshake succeeded")
		}
	}
	same := func(c net.Conn) net.Conn { return c }
	const hint = "likely pinned or its own CA bundle; try --no-mitm example.com"
	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		wrap   func(net.Conn) net.Conn
		prefix string
		hint   string
	}{
		{"alert", &tls.Config{ServerName: "example.com", RootCAs: x509.NewCertPool()}, same,
			"tls handshake: client does not trust the CA: remote error: tls: ", hint},
		{"hung up", &tls.Config{ServerName: "example.com", RootCAs: x509.NewCertPool()},
			func(c net.Conn) net.Conn { return closeAfterRead{c} },
			"tls handshake: client does not trust the CA: it closed the connection after the certificate", hint},
		{"other failure", &tls.Config{ServerName: "example.com", MaxVersion: tls.VersionTLS12, RootCAs: ep.roots,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, same, // the leaf is ECDSA
			"TLS handshake failed: ", "the client may not trust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handshake(tc.cfg, tc.wrap)
			e := ep.next(t, event.TypeConnection)
			if !strings.HasPrefix(e.Reason, tc.prefix) || !strings.HasPrefix(e.Hint, tc.hint) {
				t.Errorf("got reason %q hint %q, want %q... and %q...", e.Reason, e.Hint, tc.prefix, tc.hint)
			}
		})
	}
}

// A request's event names the address ebpfjail dialled, and a denied one
// the rule's message.
func TestRequestEventsCarryUpstreamAndDenyMessage(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	ep := newEventProxy(t, origin, func(r *rules.Request) rules.Verdict {
		if strings.HasSuffix(r.URL, "/no") {
			return rules.Verdict{DenyMessage: "not this one", Reason: "rule"}
		}
		return rules.Verdict{Allow: true, Reason: "rule"}
	})
	m := &mitm{addr: ep.addr}
	c := m.client(t, &tls.Config{RootCAs: ep.roots}, false)
	getBody(t, c, "https://example.com/yes")
	if e := ep.next(t, event.TypeRequest); e.Upstream != origin.Listener.Addr().String() || e.DenyMessage != "" {
		t.Errorf("allowed: upstream %q deny_message %q, want %q and none", e.Upstream, e.DenyMessage, origin.Listener.Addr())
	}
	resp, body := getBody(t, c, "https://example.com/no")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not this one") {
		t.Errorf("denied: %d %q", resp.StatusCode, body)
	}
	if e := ep.next(t, event.TypeRequest); e.Verdict != event.Deny || e.DenyMessage != "not this one" || e.Upstream != "" {
		t.Errorf("denied: verdict %q deny_message %q upstream %q", e.Verdict, e.DenyMessage, e.Upstream)
	}
}
