package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"golang.org/x/net/http2"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/sniff"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// CertSource mints the certificates the proxy presents (internal/tlsca).
type CertSource interface {
	// ServerConfig returns a config whose GetCertificate picks a leaf for
	// the ClientHello's server name, or for fallback(hello) without one.
	ServerConfig(nextProtos []string, fallback func(*tls.ClientHelloInfo) string) *tls.Config
}

// serveTLS terminates the client's TLS with a leaf for its server name and
// serves HTTP inside, or splices it unopened for --no-mitm names.
func (p *Proxy) serveTLS(c *conn, pc net.Conn, res sniff.Result) {
	// Two steps, so that what the handshake needed is off the stack while
	// the connection lives (refuse).
	if tc, conn := p.openTLS(c, pc, res); conn != nil {
		p.serveMITM(tc, conn)
	}
}

// openTLS checks the client's server name and completes the MITM
// handshake, or splices --no-mitm names; a nil *tls.Conn means the
// connection was served or refused here.
func (p *Proxy) openTLS(c *conn, pc net.Conn, res sniff.Result) (*conn, *tls.Conn) {
	name := hostname.Normalize(res.SNI)
	if c.name != "" && name != "" && name != c.name {
		// In a CONNECT tunnel the TLS must be for the host the CONNECT named.
		p.refuse(c, nil, "TLS server name "+name+" is not the CONNECT host "+c.name, name)
		return nil, nil
	}
	if name == "" {
		name = c.name
	}
	if name == "" {
		// No SNI (a client dialing an IP): the certificate and the rule's
		// host are where the child connected to (the name, for a fake DNS
		// address).
		name = c.destHost()
	}
	if !validHost(name) {
		p.refuse(c, nil, fmt.Sprintf("TLS server name %q is not a host name", name), "")
		return nil, nil
	}
	tc := new(conn)
	*tc = *c
	tc.scheme, tc.name = "https", name
	tc.log = c.log.With("sni", name)
	if p.noMITM(name) {
		p.spliceTLS(tc, pc)
		return nil, nil
	}
	if p.cfg.CA == nil {
		p.refuse(tc, nil, "no CA to intercept TLS", name)
		return nil, nil
	}
	conn := tls.Server(&namedConn{Conn: pc, name: name}, p.tlsConfig)
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeouts.Handshake)
	err := handshake(ctx, conn)
	cancel()
	if err != nil {
		p.emitHandshakeFailed(tc, name, err)
		return nil, nil
	}
	return tc, conn
}

// serveMITM serves HTTP/2 or HTTP/1.x inside a MITM'd connection.
func (p *Proxy) serveMITM(tc *conn, conn *tls.Conn) {
	if negotiated(conn) == "h2" {
		p.serveH2(tc, conn)
		return
	}
	if inner := p.httpInsideTLS(tc, conn); inner != nil {
		p.serveH1(tc, inner)
	}
}

// httpInsideTLS is conn with its first bytes peeked if they are HTTP, else
// nil: inside the TLS, as outside it, HTTP or nothing (DNS over TLS, a
// tunnel protocol...), refused at once rather than left to time out. A
// client may open TLS ahead of its first request (a preconnect): it gets
// the request-head timeout, not the first-bytes one.
func (p *Proxy) httpInsideTLS(tc *conn, conn *tls.Conn) net.Conn {
	res, inner, err := sniff.Peek(conn, p.cfg.Timeouts.Header)
	if err != nil || res.Kind != sniff.KindHTTP {
		p.refuseInsideTLS(tc, err)
		return nil
	}
	return inner
}

// negotiated is the protocol conn's handshake agreed on (ALPN). A call
// of its own: the whole ConnectionState would otherwise stay in the
// caller's frame for the connection's life (refuse), hence noinline.
//
//go:noinline
func negotiated(conn *tls.Conn) string {
	return conn.ConnectionState().NegotiatedProtocol
}

// serveH2 serves HTTP/2 inside a MITM'd connection, with net/http's
// server.
func (p *Proxy) serveH2(tc *conn, conn *tls.Conn) {
	srv, base := p.newH2Server()
	srv.ServeConn(conn, &http2.ServeConnOpts{Context: p.ctx, Handler: p.handler(tc), BaseConfig: base})
}

// refuseInsideTLS is the event of a MITM'd connection that sent no HTTP
// inside the TLS (err: nothing at all).
func (p *Proxy) refuseInsideTLS(tc *conn, err error) {
	name := tc.name
	e := tc.newEvent(event.TypeConnection)
	e.Verdict, e.Reason = event.Deny, "non-HTTP inside TLS"
	if err != nil {
		e.Reason = "no request inside TLS: " + err.Error()
	}
	e.Scheme, e.Host, e.Port, e.URL = "https", name, tc.port, "https://"+hostname.JoinPort(name, tc.port)
	e.Hint = "--no-mitm " + name + " passes this TLS unopened, to be decided once as CONNECT"
	if errors.Is(err, io.EOF) {
		// Closed once the handshake was done: a client that checks the
		// certificate only then (wget on GnuTLS) and rejected it.
		e.Hint = tlsca.TrustHint(tc.proc.Exe, tc.proc.Comm, name)
	}
	p.emit(e)
}

// emitHandshakeFailed emits handshakeFailed's event.
func (p *Proxy) emitHandshakeFailed(tc *conn, name string, err error) {
	p.emit(handshakeFailed(tc, name, err))
}

// handshakeFailed is the event of a client's TLS handshake that failed:
// its own class when the client gave up on the CA.
func handshakeFailed(tc *conn, name string, err error) event.Event {
	e := tc.newEvent(event.TypeConnection)
	e.Verdict, e.Reason = event.Deny, "TLS handshake failed: "+err.Error()
	e.Scheme, e.Host, e.Port, e.URL = "https", name, tc.port, "https://"+hostname.JoinPort(name, tc.port)
	e.Hint = tlsca.TrustHint(tc.proc.Exe, tc.proc.Comm, name)
	if why, ok := untrustedCA(err); ok {
		e.Reason = untrustedCAReason + ": " + why
		// A runtime we know is told its own setting; anything else most
		// likely pins its keys or carries its own roots.
		if _, known := tlsca.ClientSetting(tc.proc.Exe, tc.proc.Comm); !known {
			e.Hint = "likely pinned or its own CA bundle; try --no-mitm " + name
		}
	}
	return e
}

// namedConn carries the name a MITM'd connection's certificate is for to
// the shared tls.Config's GetCertificate (the ClientHello's SNI, else the
// CONNECT host or the destination).
type namedConn struct {
	net.Conn
	name string
}

// newTLSConfig is the one server configuration of every MITM'd connection.
// One, not one per connection: a config makes its session ticket keys on
// first use, so per-connection configs cost a key derivation and ~0.5 KiB
// each, and no client could ever resume a session.
func newTLSConfig(ca CertSource) *tls.Config {
	if ca == nil {
		return nil
	}
	return ca.ServerConfig([]string{"h2", "http/1.1"}, func(hello *tls.ClientHelloInfo) string {
		if nc, ok := hello.Conn.(*namedConn); ok {
			return nc.name
		}
		return ""
	})
}

// handshake runs the server handshake on a goroutine of its own. The
// handshake (certificate signing, ECDSA) grows a stack to 32 KiB or more,
// and a goroutine keeps its grown stack until a GC shrinks it: run here, on
// the goroutine that then waits for the connection to end, that was about
// 16 KiB per open connection.
func handshake(ctx context.Context, conn *tls.Conn) error {
	errc := make(chan error, 1)
	go func() { errc <- conn.HandshakeContext(ctx) }()
	return <-errc
}

// untrustedCAReason begins the reason of a handshake the client gave up
// because it does not trust the CA (pkg/event's schema names the prefix).
const untrustedCAReason = "tls handshake: client does not trust the CA"

// untrustedCA reports whether a failed server handshake is the client
// refusing ebpfjail's certificate: an unknown-CA, bad-certificate or
// certificate-unknown alert, or a close right after the certificate (the
// ClientHello was already read, so an EOF or reset comes after the
// server's flight: what clients that pin keys, or check against a bundle
// of their own, do without a word). why says which.
func untrustedCA(err error) (why string, ok bool) {
	msg := err.Error()
	for _, alert := range []string{"unknown certificate authority", "bad certificate", "certificate unknown"} {
		if strings.Contains(msg, "remote error: tls: "+alert) {
			return msg, true
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return "it closed the connection after the certificate (" + msg + ")", true
	}
	return "", false
}

// noMITM reports whether name matches a --no-mitm glob.
func (p *Proxy) noMITM(name string) bool { return matchesGlob(p.cfg.NoMITM, name) }
