package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/ebpfjail/ebpfjail/internal/dns"
	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// Connection kinds FuzzRequestObject puts a request head on (mode % 4).
const (
	fuzzTransparent = iota // the jail connected to an address
	fuzzSynthetic          // the jail connected to a fake DNS address for name
	fuzzExplicit           // --server / --weak: the client names everything
	fuzzTLS                // MITM'd TLS with name as the SNI (to the address)
)

// FuzzRequestObject feeds request heads a client could send, on each kind
// of connection, through the proxy's request-object building: splitHost and
// hostname.Normalize (via requestTarget, and connectTarget for a CONNECT,
// after which the rest of head is the tunnel's traffic) and ruleRequest
// (rules.NewRequest).
// Nothing may panic, and a request resolveTarget accepts must give the rule
// a Request whose Host is a bare host (no port, no brackets), whose Port is
// a real port, and whose URL says the same.
func FuzzRequestObject(f *testing.F) {
	type seed struct {
		head string
		mode uint8
		name string
		port uint16
	}
	for _, s := range []seed{
		{"GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n", fuzzTransparent, "", 80},
		{"GET / HTTP/1.1\r\nHost: Example.COM.:8080\r\n\r\n", fuzzTransparent, "", 8080},
		{"GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8080\r\n\r\n", fuzzTransparent, "", 8080},
		{"GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n", fuzzTransparent, "", 80},
		{"GET / HTTP/1.0\r\n\r\n", fuzzTransparent, "", 8000},
		{"GET http://example.com/a%2Fb?c HTTP/1.1\r\nHost: example.com\r\n\r\n", fuzzExplicit, "", 3128},
		{"GET http://example.com:8080/ HTTP/1.1\r\nHost: other.example\r\n\r\n", fuzzExplicit, "", 3128},
		{"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", fuzzExplicit, "", 3128},
		{"GET http://[::1]:3128/ HTTP/1.1\r\nHost: [::1]:3128\r\n\r\n", fuzzExplicit, "", 3128},
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", fuzzExplicit | 4, "", 3128},
		{"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\nGET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n", fuzzExplicit, "", 3128},
		{"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", fuzzTransparent | 4, "", 3128},
		{"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", fuzzTLS, "Example.com", 443},
		{"GET / HTTP/1.1\r\nHost: example.com:443\r\n\r\n", fuzzTLS, "example.com", 8443},
		{"GET / HTTP/1.1\r\nHost: other.example\r\n\r\n", fuzzTLS, "example.com", 443},
		{"GET / HTTP/1.0\r\n\r\n", fuzzTLS, "", 443},
		{"GET /a HTTP/1.1\r\nHost: synth.example\r\n\r\n", fuzzSynthetic, "synth.example", 80},
		{"GET /a HTTP/1.1\r\nHost: 198.18.0.1\r\n\r\n", fuzzSynthetic, "Synth.Example.", 80},
		{"GET /a HTTP/1.0\r\n\r\n", fuzzSynthetic, "synth.example", 8080},
		{"POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: b.example\r\n\r\n", fuzzTransparent, "", 80},
	} {
		f.Add(s.head, s.mode, s.name, s.port)
	}
	// The leaf for the server name must be minted before any request is
	// read over MITM'd TLS: a name the CA refuses never gets that far.
	ca, err := tlsca.LoadOrCreate(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, head string, mode uint8, name string, port uint16) {
		p, c, ok := fuzzConn(ca, mode, name, port)
		if !ok {
			return
		}
		br := bufio.NewReader(strings.NewReader(head))
		for range 4 { // a few pipelined requests, as one connection carries
			r, err := http.ReadRequest(br)
			if err != nil || !fuzzServerAccepts(r) {
				return
			}
			if r.Method == http.MethodConnect && c.scheme == "http" && c.name == "" {
				// serveConnect: the rest is the tunnel's, on a conn of its own.
				ct, ok := connectTarget(r)
				if !ok {
					return
				}
				host, port := ct.host, ct.port
				checkBareHost(t, r, "CONNECT host", host, port)
				inner := *c
				inner.name, inner.port, inner.dialIP = host, port, netip.Addr{}
				if mode&4 != 0 {
					inner.scheme = "https" // TLS in the tunnel, SNI absent or the CONNECT host
				}
				c = &inner
				continue
			}
			tg, bad := p.requestTarget(c, r)
			if bad == "" {
				req := c.ruleRequest(r, tg)
				checkRuleRequest(t, r, c, req)
			}
			io.Copy(io.Discard, r.Body)
		}
	})
}

// fuzzConn makes the conn (and the Proxy, for unsynth) a connection of
// the given kind would have; ok is false for a combination that cannot
// happen.
func fuzzConn(ca *tlsca.CA, mode uint8, name string, port uint16) (*Proxy, *conn, bool) {
	if port == 0 {
		port = 80
	}
	syn := dns.NewSynthetic()
	p := &Proxy{cfg: Config{Synthetic: syn}}
	c := &conn{
		scheme: "http", port: int(port), requesterIP: "127.0.0.1",
		proc: rules.Proc{PID: 42, Comm: "fuzz"}, log: slog.New(slog.DiscardHandler),
	}
	dst := netip.MustParseAddr("192.0.2.10")
	switch mode % 4 {
	case fuzzTransparent:
		c.who = record{Dst: netip.AddrPortFrom(dst, port)}
		c.dialIP = dst
	case fuzzSynthetic:
		// The shim records names as miekg/dns writes them: printable
		// ASCII, with everything else escaped.
		for i := 0; i < len(name); i++ {
			if name[i] <= ' ' || name[i] > '~' {
				return nil, nil, false
			}
		}
		v4, _, _ := syn.Addrs(name)
		c.who = record{Dst: netip.AddrPortFrom(v4, port)}
		c.destName, _ = syn.Name(v4)
	case fuzzExplicit:
	case fuzzTLS:
		// crypto/tls refuses a server name with a trailing dot, and the CA
		// one it cannot mint a leaf for; none at all is a client dialing
		// an address.
		if strings.HasSuffix(name, ".") {
			return nil, nil, false
		}
		if name != "" {
			if _, err := ca.Leaf(name); err != nil {
				return nil, nil, false
			}
		}
		c.who = record{Dst: netip.AddrPortFrom(dst, port)}
		c.dialIP = dst
		c.scheme, c.name = "https", hostname.Normalize(name)
		if c.name == "" {
			c.name = c.destHost()
		}
	}
	return p, c, true
}

// fuzzServerAccepts reports whether net/http's server hands r to the
// handler (http.ReadRequest leaves these checks to it). A request whose
// Host header it cannot see any more (ReadRequest drops it) is let
// through: the fuzz target sees more than the server lets by, never less.
func fuzzServerAccepts(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if r.URL.Host == "" && !httpguts.ValidHostHeader(r.Host) {
		return false // r.Host is the Host header's
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// checkBareHost checks a host and port about to reach a rule.
func checkBareHost(t *testing.T, r *http.Request, what, host string, port int) {
	t.Helper()
	if host == "" {
		t.Fatalf("%s %q %s (Host %q): empty host", r.Method, r.RequestURI, what, r.Host)
	}
	if strings.ContainsAny(host, "[]") {
		t.Fatalf("%s %q %s (Host %q): host %q has brackets", r.Method, r.RequestURI, what, r.Host, host)
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		t.Fatalf("%s %q %s (Host %q): host %q has a port", r.Method, r.RequestURI, what, r.Host, host)
	}
	if port < 1 || port > 65535 {
		t.Fatalf("%s %q %s (Host %q): port %d", r.Method, r.RequestURI, what, r.Host, port)
	}
}

// checkRuleRequest checks the Request built for r on c.
func checkRuleRequest(t *testing.T, r *http.Request, c *conn, req *rules.Request) {
	t.Helper()
	checkBareHost(t, r, "rule request", req.Host, req.Port)
	if req.Scheme != c.scheme || req.Method != r.Method {
		t.Fatalf("%s %q: rule request scheme %q method %q", r.Method, r.RequestURI, req.Scheme, req.Method)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatalf("%s %q (Host %q): rule request URL %q: %v", r.Method, r.RequestURI, r.Host, req.URL, err)
	}
	if u.Scheme != c.scheme || u.User != nil || u.Opaque != "" {
		t.Fatalf("%s %q (Host %q): rule request URL %q is not scheme://host/...", r.Method, r.RequestURI, r.Host, req.URL)
	}
	if !strings.EqualFold(u.Hostname(), req.Host) {
		t.Fatalf("%s %q (Host %q): rule request URL %q names host %q, Host is %q", r.Method, r.RequestURI, r.Host, req.URL, u.Hostname(), req.Host)
	}
	urlPort := rules.DefaultPort(c.scheme)
	if s := u.Port(); s != "" {
		urlPort, err = strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s %q: rule request URL %q: port %q", r.Method, r.RequestURI, req.URL, s)
		}
	}
	if urlPort != req.Port {
		t.Fatalf("%s %q (Host %q): rule request URL %q is for port %d, Port is %d", r.Method, r.RequestURI, r.Host, req.URL, urlPort, req.Port)
	}
}
