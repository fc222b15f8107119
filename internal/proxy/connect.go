package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// serveConnect handles a CONNECT from a client that was told to use a proxy
// (its HTTPS_PROXY pointed somewhere): the tunnel is opened and what flows
// in it is classified and decided like any other connection, with the
// CONNECT host as the name every request must match.
func (p *Proxy) serveConnect(c *conn, w http.ResponseWriter, r *http.Request) {
	ct, ok := connectTarget(r)
	if !ok {
		writeText(w, http.StatusBadRequest, "CONNECT needs host:port\n")
		return
	}
	host, port := ct.host, ct.port
	hj, ok := w.(http.Hijacker)
	if !ok {
		p.refuseConnect(c, r, "CONNECT over HTTP/2 is not supported")
		writeText(w, http.StatusBadRequest, "CONNECT is not supported here\n")
		return
	}
	raw, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer raw.Close()
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	inner := *c
	// What flows inside is clear until it says otherwise (TLS), even in a
	// tunnel opened inside intercepted TLS; each request is decided with
	// the host and port this CONNECT names.
	inner.scheme, inner.name, inner.port = "http", host, port
	// Inside the tunnel the only address worth anything is the name's.
	inner.dialIP = netip.Addr{}
	inner.log = c.log.With("connect", r.Host)
	c.log.Debug("tunnel opened", "connect", r.Host)
	var tunnel net.Conn = raw
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		tunnel = &prefixConn{Conn: raw, prefix: append([]byte(nil), b...)}
	}
	p.classify(&inner, tunnel)
}

// refuseConnect records a CONNECT that ebpfjail cannot answer itself, and
// so refuses: it is never forwarded, since the upstream (were it a proxy)
// would open a tunnel to a port the rule never saw.
func (p *Proxy) refuseConnect(c *conn, r *http.Request, why string) {
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme = r.Method, c.scheme+"://"+r.Host, c.scheme
	e.Verdict, e.Reason, e.Status = event.Deny, why, http.StatusBadRequest
	p.emit(e)
}

// prefixConn replays bytes already read before the rest of Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// Unwrap returns the connection under the replayed bytes.
func (c *prefixConn) Unwrap() net.Conn { return c.Conn }

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
