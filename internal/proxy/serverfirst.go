package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/sniff"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// serverFirstAfter is how long a client may say nothing before, under
// --tcp, its connection is decided as TCP on host and port alone, so a
// server that speaks first (SSH, SMTP, MySQL, Redis's replies) is not kept
// from doing so. TLS and HTTP clients send their first bytes within a few
// milliseconds of connect() (curl and Python: 0.1-6 ms here, CA bundle
// loading included), so 100 ms lets nearly all of them be classified first
// and still greets a person at once. A later one is not lost: see
// serverFirst.
const serverFirstAfter = 100 * time.Millisecond

// silentRefuseAfter is how long a client of a server-first protocol's port
// (serverFirstPorts) may say nothing before a connection that no rule let
// through as TCP (no --tcp, or the rule said no) is reset: short, so that
// it learns at once that it is refused. On any other port a silent client
// has the whole peek timeout: a TLS or HTTP client slowed down past half a
// second (a loaded machine, a big CA bundle to parse before the
// ClientHello) would otherwise be refused for good, whereas --tcp's
// decision can still be undone.
const silentRefuseAfter = 500 * time.Millisecond

// refuseSilentAfter is how long a client on port may stay silent before
// it is refused (silentRefuseAfter).
func (p *Proxy) refuseSilentAfter(port int) time.Duration {
	if serverFirstPorts[port] != "" {
		return silentRefuseAfter
	}
	return p.cfg.PeekTimeout
}

// window is how long a peek that started at start may still wait, within
// d and the peek timeout; at least a moment, to take bytes already there.
func (p *Proxy) window(start time.Time, d time.Duration) time.Duration {
	left := min(d, p.cfg.PeekTimeout) - time.Since(start)
	return max(left, time.Millisecond)
}

// silent reports whether a peek timed out before the client sent a byte.
func silent(pc net.Conn, err error) bool {
	sc, ok := pc.(*sniff.Conn)
	return errors.Is(err, os.ErrDeadlineExceeded) && ok && sc.Buffered() == 0
}

// silentClient deals with a client that said nothing for serverFirstAfter.
// Under --tcp the rule decides it as TCP now (serverFirst). Otherwise, or
// when the rule says no, the client has until refuseSilentAfter to speak,
// and is then classified as any other; still silent, it is reset. served
// says the connection was dealt with; else the peek goes on with res, pc
// and err.
func (p *Proxy) silentClient(c *conn, pc, raw net.Conn, start time.Time) (res sniff.Result, _ net.Conn, err error, served bool) {
	var refusal *event.Event
	// Not a bare connection to an explicit proxy: it has no destination
	// before the client names one.
	if p.cfg.TCP && (c.name != "" || c.who.Dst.IsValid()) {
		if served, refusal = p.serverFirst(c, pc, raw, start); served {
			return res, pc, nil, true
		}
	}
	res, pc, err = sniff.Peek(pc, p.window(start, p.refuseSilentAfter(c.port)))
	if !silent(pc, err) {
		return res, pc, err, false
	}
	if refusal == nil {
		refusal = silentRefusal(c)
	}
	p.emit(*refusal)
	reset(raw)
	return res, pc, err, true
}

// silentRefusal is the event of a silent client refused without --tcp.
func silentRefusal(c *conn) *event.Event {
	e := c.newEvent(event.TypeConnection)
	e.Verdict, e.Reason, e.Scheme = event.Deny, "non-HTTP", "tcp"
	e.URL, e.Host, e.Port = "tcp://"+hostname.JoinPort(c.destHost(), c.port), c.destHost(), c.port
	e.Hint = "non-HTTP (server speaks first?): allow it with --tcp"
	if name := serverFirstPorts[c.port]; name != "" {
		e.Hint += " (port " + strconv.Itoa(c.port) + " is " + name + "'s)"
	}
	return &e
}

// serverFirstPorts names the common protocols whose server speaks first:
// their silent clients are refused at once, and the hint names them.
var serverFirstPorts = map[int]string{
	21: "FTP", 22: "SSH", 25: "SMTP", 110: "POP3", 143: "IMAP", 587: "SMTP submission",
	3306: "MySQL", 5900: "VNC", 6379: "Redis",
}

// serverFirst decides a silent client's connection as TCP on host and port
// (scheme "tcp") and, if allowed, connects upstream. Then whoever speaks
// first decides what it is: the server (a greeting) makes it a spliced
// TCP connection; the client, with TLS or HTTP, makes it what it would
// have been had it spoken at once (the upstream connection, which carried
// nothing, is dropped and each request decided on its own), with anything
// else the splice goes on. So a late TLS client is still intercepted, and
// at worst (the server greeted first) governed by the rule's TCP verdict
// for that host and port. served is false when the rule said no: refusal
// is then its event, for when the client stays silent.
func (p *Proxy) serverFirst(c *conn, pc, raw net.Conn, start time.Time) (served bool, refusal *event.Event) {
	t := target{host: c.destHost(), port: c.port}
	if c.name != "" {
		t.host = c.name // inside a CONNECT tunnel
	}
	if !validTarget(t) {
		p.serveTCP(c, pc, raw) // refuses it, saying why
		return true, nil
	}
	req := c.connectRequest("tcp", t)
	if p.refuseSecretHost(c, t, req) {
		if raw != nil {
			reset(raw)
		}
		return true, nil
	}
	v := p.cfg.Rules.Evaluate(p.ctx, req)
	e := c.requestEvent(req, v)
	if !v.Allow {
		return false, &e
	}
	up, err := p.dialSplice(c, t)
	if err != nil {
		p.unreachable(e, err, raw)
		return true, nil
	}
	res, pc, err, early := p.race(pc, raw, up, start)
	if err == nil && (res.Kind == sniff.KindTLS || res.Kind == sniff.KindHTTP) {
		up.Close()
		<-early.done
		c.log.Debug("a silent client spoke first after all", "kind", res.Kind.String())
		p.dispatch(c, res, pc, raw)
		return true, nil
	}
	// What the client sends after the greeting is searched for secrets'
	// placeholders as on any --tcp connection.
	e.Upstream = up.RemoteAddr().String()
	p.relay(p.scanTCP(c, pc, t), early, e, v)
	return true, nil
}

// race waits, until the peek timeout, for the client's first bytes or the
// upstream's, whichever come first; the upstream's are kept in the
// returned earlyConn. A client that did not win (or sent nothing) may have
// begun: the returned conn replays what it sent.
func (p *Proxy) race(pc, raw, up net.Conn, start time.Time) (sniff.Result, net.Conn, error, *earlyConn) {
	early := &earlyConn{Conn: up, done: make(chan struct{})}
	var (
		mu   sync.Mutex
		over bool
	)
	// Set before the upstream can speak, which cuts it short; a moment at
	// least, for a client that spoke while the rule was deciding.
	raw.SetReadDeadline(time.Now().Add(max(p.cfg.PeekTimeout-time.Since(start), serverFirstAfter)))
	go func() {
		early.readFirst()
		mu.Lock()
		defer mu.Unlock()
		if !over {
			raw.SetReadDeadline(time.Now())
		}
	}()
	res, pc, err := sniff.Peek(pc, 0)
	mu.Lock()
	over = true
	mu.Unlock()
	raw.SetReadDeadline(time.Time{})
	return res, pc, err, early
}

// earlyConn is an upstream connection whose first read was made before it
// was spliced (race): reads give those bytes first. It keeps splice(2)
// available both ways (WriteTo, ReadFrom), and Unwrap and CloseWrite
// reach the connection under it.
type earlyConn struct {
	net.Conn
	done chan struct{} // closed once the first read is in buf and err
	buf  []byte
	err  error
}

func (c *earlyConn) readFirst() {
	defer close(c.done)
	b := make([]byte, 4<<10)
	n, err := c.Conn.Read(b)
	c.buf, c.err = b[:n], err
}

func (c *earlyConn) Read(b []byte) (int, error) {
	<-c.done
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// WriteTo writes the early bytes, then hands over to the connection.
func (c *earlyConn) WriteTo(w io.Writer) (int64, error) {
	<-c.done
	var n int64
	if len(c.buf) > 0 {
		m, err := w.Write(c.buf)
		n, c.buf = int64(m), nil
		if err != nil {
			return n, err
		}
	}
	if c.err == io.EOF {
		return n, nil
	}
	if c.err != nil {
		return n, c.err
	}
	m, err := io.Copy(w, c.Conn)
	return n + m, err
}

func (c *earlyConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

func (c *earlyConn) CloseWrite() error {
	closeWrite(c.Conn)
	return nil
}

func (c *earlyConn) Unwrap() net.Conn { return c.Conn }
