package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// misuseBody is the message of a request refused for a secret's misuse.
const misuseBody = "a secret's placeholder was sent where the secret does not belong\n"

// refuseSecretMisuse answers 403 to a request whose head carries a
// secret's placeholder to a host the secret does not belong to, before the
// rule is asked (the attempt is recorded whatever the rule would say).
func (p *Proxy) refuseSecretMisuse(c *conn, w http.ResponseWriter, r *http.Request, t target) bool {
	m := p.cfg.Secrets.Check(r, t.host, c.scheme == "https")
	if name := p.cfg.Secrets.InName(t.host); m == nil && name != "" {
		m = &secrets.Misuse{Secret: name, Where: "host"} // the server name or CONNECT host
	}
	if m == nil {
		return false
	}
	req := c.ruleRequest(r, t)
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme, e.Host, e.Port = req.Method, req.URL, req.Scheme, req.Host, req.Port
	e.Verdict, e.Status = event.Deny, http.StatusForbidden
	p.emitMisuse(&e, *m)
	writeText(w, http.StatusForbidden, blockedBody+misuseBody)
	return true
}

// refuseSecretHost refuses a connection decided once (--no-mitm TLS,
// --tcp) whose host name (the client's server name or CONNECT host)
// carries a secret's placeholder: resolving it would hand the placeholder
// to a DNS server.
func (p *Proxy) refuseSecretHost(c *conn, t target, req *rules.Request) bool {
	name := p.cfg.Secrets.InName(t.host)
	if name == "" {
		return false
	}
	e := c.requestEvent(req, rules.Verdict{})
	p.emitMisuse(&e, secrets.Misuse{Secret: name, Where: "host"})
	return true
}

// emitMisuse records m: a secret_misuse event, then e, the request's
// event, denied for it.
func (p *Proxy) emitMisuse(e *event.Event, m secrets.Misuse) {
	e.Verdict, e.Reason = event.Deny, secretMisusePrefix(m.Secret, m.Where)
	me := *e
	me.Type, me.Secret, me.Where = event.TypeSecretMisuse, m.Secret, m.Where
	me.Reason = "placeholder of " + m.Secret + " sent to a host it does not belong to"
	me.Status, me.BytesUp, me.BytesDown, me.DurationMS = 0, 0, 0, 0
	p.emit(me)
	p.emit(*e)
}

// secretMisusePrefix is the reason of what a secret_misuse event denied.
func secretMisusePrefix(secret, where string) string {
	return "secret_misuse: " + secret + " in " + where
}

// armSecrets puts the real values into r, allowed by the rule, for the
// secrets that belong to its host, and has its body watched: a placeholder
// in the body that does not belong there stops the upload (fw.misuse).
// The response of a host a secret belongs to is redacted (fw.secrets),
// and asked for in identity encoding so that it can be.
func (p *Proxy) armSecrets(c *conn, r *http.Request, t target, fw *forward) {
	set := p.cfg.Secrets
	if set == nil {
		return
	}
	secure := c.scheme == "https"
	set.Swap(r, t.host, secure)
	if set.Belongs(t.host, secure) {
		fw.secrets = set
		r.Header.Set("Accept-Encoding", "identity")
	}
	if b := set.RequestBody(r.Body, t.host, secure); b != r.Body {
		r.Body = &watchedBody{ReadCloser: b, fw: fw}
	}
}

// watchedBody notes in fw the misuse that ended a request body.
type watchedBody struct {
	io.ReadCloser
	fw *forward
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var me *secrets.MisuseError
	if errors.As(err, &me) && b.fw.misuse == nil {
		b.fw.misuse = &me.Misuse
	}
	return n, err
}

// refuseBodyMisuse answers 403 to a request whose upload stopped at a
// secret's placeholder.
func refuseBodyMisuse(w http.ResponseWriter, fw *forward) bool {
	if fw == nil || fw.misuse == nil {
		return false
	}
	writeText(w, http.StatusForbidden, blockedBody+misuseBody)
	return true
}

// tcpScanBytes is how much of a --tcp stream is searched for
// placeholders: the start, where a protocol's credentials go (AUTH, a
// login packet, a request line).
const tcpScanBytes = 64 << 10

// scanTCP wraps pc, a --tcp client's connection, so that a placeholder in
// its first bytes ends it before the chunk that holds it goes upstream,
// with a secret_misuse event (no secret is ever sent over --tcp).
func (p *Proxy) scanTCP(c *conn, pc net.Conn, t target) net.Conn {
	sc := p.cfg.Secrets.NewScanner(tcpScanBytes)
	if sc == nil {
		return pc
	}
	return &scannedConn{Conn: pc, sc: sc, found: func(secret string) {
		e := c.newEvent(event.TypeConnection)
		e.Scheme, e.Host, e.Port, e.URL = "tcp", t.host, t.port, "tcp://"+t.hostport()
		p.emitMisuse(&e, secrets.Misuse{Secret: secret, Where: "tcp"})
	}}
}

// scannedConn is a client connection whose reads are searched for
// placeholders (scanTCP).
type scannedConn struct {
	net.Conn
	sc    *secrets.Scanner
	found func(secret string)
	done  bool
}

func (s *scannedConn) Read(p []byte) (int, error) {
	if s.done {
		return 0, errSecretMisuse
	}
	n, err := s.Conn.Read(p)
	if secret := s.sc.Check(p[:n]); secret != "" {
		s.done = true
		clear(p[:n])
		s.found(secret)
		return 0, errSecretMisuse
	}
	return n, err
}

var errSecretMisuse = errors.New("a secret's placeholder where the secret does not belong")

// CloseWrite and Unwrap keep what pipe and the tunnel watch look for.
func (s *scannedConn) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Conn.Close()
}

func (s *scannedConn) Unwrap() net.Conn { return s.Conn }
