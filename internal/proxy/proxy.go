package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/origin"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Config is what the listener needs from the rest of ebpfjail.
type Config struct {
	Logger *slog.Logger
	// OrigDst returns the kernel's record for the client end peer.
	OrigDst func(peer netip.AddrPort) (origin.Origin, error)
	// DNS serves a connection the jail made to TCP port 53.
	DNS func(c net.Conn, who origin.Origin)
	// Rules decides every request. Required.
	Rules rules.Engine
	// CA mints the certificates for intercepted TLS; nil refuses all TLS.
	CA CertSource
	// NoMITM are globs of server names whose TLS is spliced unopened.
	NoMITM []string
	// Resolver picks upstream addresses; nil means the system resolver.
	Resolver *Resolver
	// RootCAs verify upstream TLS; nil means the system roots
	// (SSL_CERT_FILE and SSL_CERT_DIR honoured).
	RootCAs *x509.CertPool
	// Synthetic is fake DNS mode's table: a connection to one of its
	// addresses is for the name it stands for, and that address is never
	// dialed (ebpfjail resolves the name itself). Nil in forward mode.
	Synthetic SyntheticNames
	// ResolvedNames, when set, tells which names the jail resolved to an
	// address (forward mode), for the logs.
	ResolvedNames func(netip.Addr) []string
	// TCP sends non-HTTP connections to the rule (scheme "tcp") instead of
	// refusing them; allowed ones are spliced upstream.
	TCP bool
	// Events receives an event per rule evaluation, refused connection and
	// failed handshake (pkg/event); nil drops them.
	Events func(event.Event)
	// Explicit, when set, makes this an explicit proxy on that address
	// (--server, --weak): clients name their destination (absolute-form
	// requests, CONNECT); there is no kernel record and OrigDst is unused.
	Explicit string
	// ExplicitTLS, with Explicit, is a second explicit listener (httpjail's
	// HTTPS port): it serves CONNECT and HTTP as Explicit does, and a
	// client that starts TLS directly (no CONNECT) is taken for its server
	// name on port 443.
	ExplicitTLS string
	// PeekTimeout bounds how long a client may take to send its first
	// bytes (ClientHello or request head); 0 means 5s.
	PeekTimeout time.Duration
	// Timeouts bound every wait on a client or an upstream, so a peer
	// that stalls (slowloris) cannot pin a goroutine; zero fields take
	// DefaultTimeouts'.
	Timeouts Timeouts
	// Dial connects upstream to an address; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxInFlight bounds the requests served at once (0 means
	// DefaultMaxInFlight); one over it waits briefly for a slot, then is
	// answered 503.
	MaxInFlight int
	// Secrets swaps placeholders for real credentials on allowed requests
	// to their hosts and refuses them anywhere else; nil means none.
	Secrets *secrets.Set
	// Splice, when set, joins an allowed tunnel's client and upstream
	// sockets in the kernel (internal/bpf's Splicer) once nothing needs
	// to read its bytes; nil, or an error, copies them in user space.
	Splice func(client, up *net.TCPConn) (SplicedPair, error)
}

// SyntheticNames maps fake DNS answers back to names (internal/dns).
type SyntheticNames interface {
	Name(netip.Addr) (string, bool)
	// Open is Name for a connection to the address: the address keeps
	// its name until done is called.
	Open(netip.Addr) (name string, done func(), ok bool)
	Contains(netip.Addr) bool
}

// Proxy is the transparent listener on 127.0.0.1 and [::1].
type Proxy struct {
	cfg    Config
	dialer *dialer
	// h1 and h2 forward HTTP/1.x and HTTP/2 clients' requests (see
	// newTransport); both are built once, not per request.
	h1, h2    *httputil.ReverseProxy
	upstreams [2]*http.Transport
	tlsConfig *tls.Config // nil without a CA
	lns       []net.Listener
	ports     [2]uint16
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	nextID    atomic.Uint64
	// active counts accepted connections not yet done (Stats).
	active atomic.Int64
	// inFlight holds a token per request being served (MaxInFlight);
	// peakInFlight is its most since trimAfterBursts last looked.
	inFlight     chan struct{}
	peakInFlight atomic.Int64
	// errorLog is net/http's and http2's (newErrorLog).
	errorLog *log.Logger
	// lean holds the lean HTTP/1.1 path's upstream connections.
	lean *leanPool
}

// Listen binds the listener (ephemeral ports) and starts serving.
func Listen(cfg Config) (*Proxy, error) {
	if cfg.Logger == nil || cfg.Rules == nil || (cfg.OrigDst == nil && cfg.Explicit == "") {
		return nil, errors.New("proxy: Logger, Rules and OrigDst (or Explicit) are required")
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		cfg.Dial = d.DialContext
	}
	if cfg.Resolver == nil {
		cfg.Resolver = &Resolver{}
	}
	if cfg.PeekTimeout == 0 {
		cfg.PeekTimeout = peekTimeout
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	p := &Proxy{cfg: cfg, conns: map[net.Conn]struct{}{}, inFlight: make(chan struct{}, cfg.MaxInFlight), errorLog: newErrorLog(cfg.Logger)}
	p.dialer = &dialer{resolver: cfg.Resolver, dial: cfg.Dial}
	if cfg.Synthetic != nil {
		p.dialer.never = cfg.Synthetic.Contains
	}
	p.upstreams = [2]*http.Transport{newTransport(p.dialer, cfg.RootCAs, false), newTransport(p.dialer, cfg.RootCAs, true)}
	p.h1, p.h2 = newForwarder(p.upstreams[0]), newForwarder(p.upstreams[1])
	p.tlsConfig = newTLSConfig(cfg.CA)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.lean = newLeanPool(p.ctx, p.dialer, cfg.RootCAs)
	addrs := []string{"127.0.0.1:0", "[::1]:0"}
	if cfg.Explicit != "" {
		addrs = []string{cfg.Explicit}
		if cfg.ExplicitTLS != "" {
			addrs = append(addrs, cfg.ExplicitTLS)
		}
	}
	for i, addr := range addrs {
		network := "tcp4"
		if i == 1 {
			network = "tcp6"
		}
		if cfg.Explicit != "" {
			network = "tcp"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		p.lns = append(p.lns, ln)
		p.ports[i] = uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	for i, ln := range p.lns {
		p.wg.Add(1)
		go p.serve(ln, cfg.Explicit != "" && i == 1)
	}
	p.wg.Add(1)
	go p.trimAfterBursts()
	return p, nil
}

// Ports returns the IPv4 and IPv6 listener ports.
func (p *Proxy) Ports() (v4, v6 uint16) { return p.ports[0], p.ports[1] }

// Active returns how many accepted client connections are being served
// (upstream connections are not counted).
func (p *Proxy) Active() int64 { return p.active.Load() }

// Addr is the first listener's address (the explicit proxy's).
func (p *Proxy) Addr() net.Addr { return p.lns[0].Addr() }

// TLSAddr is ExplicitTLS's listener address; nil without one.
func (p *Proxy) TLSAddr() net.Addr {
	if p.cfg.Explicit == "" || len(p.lns) < 2 {
		return nil
	}
	return p.lns[1].Addr()
}

// Close stops accepting, closes open connections and waits for their
// goroutines.
func (p *Proxy) Close() error {
	p.cancel()
	for _, ln := range p.lns {
		ln.Close()
	}
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, t := range p.upstreams {
		t.CloseIdleConnections()
	}
	if p.lean != nil {
		p.lean.close()
	}
	return nil
}

// serve accepts on ln; directTLS marks ExplicitTLS's listener.
func (p *Proxy) serve(ln net.Listener, directTLS bool) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and friends: back off rather than spin.
			p.cfg.Logger.Warn("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Add(1)
		p.active.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.active.Add(-1)
			defer p.track(c, false)
			p.handle(c.(*net.TCPConn), directTLS)
		}()
	}
}

// track registers (add) or forgets a live connection so Close can end it.
func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.ctx.Err() != nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// isSelf reports whether dst is this listener: a jailed connection to it
// would loop.
func (p *Proxy) isSelf(dst netip.AddrPort) bool {
	if !dst.Addr().IsLoopback() && !dst.Addr().IsUnspecified() {
		return false
	}
	return dst.Port() == p.ports[0] || dst.Port() == p.ports[1]
}

// reset closes c with an RST when a TCP connection is under it, so the
// peer sees a refusal, not an EOF.
func reset(c net.Conn) {
	if tc := tcpConn(c); tc != nil {
		tc.SetLinger(0)
	}
	c.Close()
}

// handle hands one accepted connection on: to the dispatcher (classify)
// with what the kernel recorded about it, or to the DNS shim; a connection
// without a record, or to the listener itself, is reset.
func (p *Proxy) handle(c *net.TCPConn, directTLS bool) {
	cn := p.admitConn(c, directTLS)
	if cn == nil {
		return
	}
	if done := p.nameDest(cn); done != nil {
		defer done()
	}
	p.classify(cn, c)
	c.Close()
}

// admitConn is what the kernel recorded about c, or nil when c was served
// (DNS, the explicit listener) or refused here. The record stays in this
// frame, not in handle's, which lives as long as the connection (refuse).
func (p *Proxy) admitConn(c *net.TCPConn, directTLS bool) *conn {
	id := p.nextID.Add(1)
	peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	log := p.cfg.Logger.With("conn", id)
	if p.cfg.Explicit != "" {
		p.handleExplicit(c, id, peer, log, directTLS)
		return nil
	}
	who, err := p.cfg.OrigDst(peer)
	if err != nil {
		// Not from the jail, or its record is gone: never dial locally.
		log.Warn("refused connection without a record", "peer", peer.String(), "err", err)
		reset(c)
		return nil
	}
	cn := newConn(id, who, log)
	if p.isSelf(who.Dst) {
		p.refuse(cn, c, "loop: a connection to ebpfjail's own listener", "")
		return nil
	}
	if who.Dst.Port() == 53 && p.cfg.DNS != nil {
		cn.log.Debug("dns over tcp")
		p.cfg.DNS(c, who)
		c.Close()
		return nil
	}
	return cn
}

// handleExplicit hands on a connection to the explicit listener: the
// client names where it goes; there is no kernel record.
func (p *Proxy) handleExplicit(c *net.TCPConn, id uint64, peer netip.AddrPort, log *slog.Logger, directTLS bool) {
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	p.classify(&conn{
		id: id, scheme: "http", port: int(local.Port()),
		requesterIP: peer.Addr().String(), log: log, directTLS: directTLS,
	}, c)
	c.Close()
}

// refuse denies connection c with a connection event saying why (host,
// if not empty, is the event's), and resets raw (if any).
//
// Refusals build their event here, never in the functions that stay on a
// connection's stack while it lives (handle, classify, dispatch,
// serveTLS): an event is 512 bytes of frame each time, and those frames
// decide whether an idle connection's goroutine stack can shrink to 8 KiB
// (under 4 KiB in use) or keeps 16 KiB, a third of ebpfjail's memory at
// 1,000 open connections.
func (p *Proxy) refuse(c *conn, raw net.Conn, reason, host string) {
	e := c.newEvent(event.TypeConnection)
	e.Verdict, e.Reason = event.Deny, reason
	if host != "" {
		e.Host = host
	}
	p.emit(e)
	if raw != nil {
		reset(raw)
	}
}

// nameDest names cn's destination for the logs and, for a fake DNS answer,
// for everything: the name is what the child asked for; the address means
// nothing outside the jail, and keeps its name until done is called.
func (p *Proxy) nameDest(cn *conn) (done func()) {
	if syn := p.cfg.Synthetic; syn != nil && syn.Contains(cn.dialIP) {
		name, done, ok := syn.Open(cn.dialIP)
		cn.destName = name
		cn.dialIP = netip.Addr{}
		cn.log = cn.log.With("name", cn.destName)
		if ok {
			return done
		}
		return nil
	}
	if p.cfg.ResolvedNames != nil {
		if names := p.cfg.ResolvedNames(cn.dialIP); len(names) > 0 {
			cn.log = cn.log.With("names", strings.Join(names, ","))
		}
	}
	return nil
}
