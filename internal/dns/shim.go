package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/origin"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Config configures a [Shim].
type Config struct {
	// Upstream is the "host:port" of the resolver queries are forwarded to.
	Upstream string
	// Logger receives one Info record per query. Required.
	Logger *slog.Logger
	// SocketOrigin returns the kernel's record for a jailed UDP socket by its
	// socket cookie (internal/bpf's Objects.SocketOrigin). Nil means UDP queries
	// are logged without a process.
	SocketOrigin func(cookie uint64) (origin.Origin, error)
	// Fake, when set, answers every query from this table and forwards
	// nothing (--dns fake): A and AAAA get the name's synthetic addresses,
	// every other type an empty answer.
	Fake *Synthetic
	// Events receives one event per query (pkg/event); nil drops them.
	Events func(event.Event)
	// Rules, in forward mode, decides per name (scheme "dns", method
	// "QUERY"): a denied name gets NXDOMAIN and never leaves the machine.
	// Nil forwards everything.
	Rules rules.Engine
	// Secrets, when set, refuses a name that carries a secret's
	// placeholder (an exfiltration by lookup); nil checks nothing.
	Secrets *secrets.Set
}

// fakeTTL is the TTL of synthetic answers, in seconds: a short one keeps
// caches from outliving the jail by much, and an address whose name is
// idle (see Synthetic) can go to another name this long after its last
// answer.
const fakeTTL = 60

const (
	// upstreamTimeout bounds one query's whole upstream work, the TCP retry
	// after a truncated UDP answer included. Stub resolvers give up after
	// about 5s (glibc's default), so waiting longer helps nobody.
	upstreamTimeout = 5 * time.Second

	// maxInflight bounds the queries being answered at once, over both
	// transports. The UDP server starts a goroutine per datagram, so
	// without a bound a flooding child could pile up goroutines that each
	// wait for the upstream. Queries beyond it get SERVFAIL at once.
	maxInflight = 512

	// tcpIdleTimeout closes a DNS-over-TCP connection that sends nothing:
	// RFC 7766 §6.2.3 asks servers to reclaim idle connections, and it keeps
	// a silent client from pinning a goroutine.
	tcpIdleTimeout = 10 * time.Second

	// tcpWriteTimeout bounds one answer's write, so a client that stops
	// reading cannot block the connection's goroutines forever.
	tcpWriteTimeout = 5 * time.Second

	// maxPipelined bounds the queries of one TCP connection answered at the
	// same time (RFC 7766 §6.2.1.1 pipelining); further reads wait.
	maxPipelined = 16
)

var errBusy = errors.New("too many queries in flight")

// Shim answers the DNS queries of one jail. Create it with [Listen].
type Shim struct {
	closers      []func() error // after the handlers: what ListenIn holds
	log          *slog.Logger
	upstream     string
	socketOrigin func(cookie uint64) (origin.Origin, error)
	fake         *Synthetic
	rules        rules.Engine
	events       func(event.Event)
	secrets      *secrets.Set
	seen         *observed     // forward mode: address -> names answered
	malformed    atomic.Uint64 // messages that did not parse as a query
	timeout      time.Duration // upstreamTimeout; shorter in tests

	v4, v6  uint16
	servers []*dns.Server

	// ctx is cancelled by Close; it aborts upstream exchanges in flight.
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // maxInflight tokens

	mu     sync.Mutex
	closed bool
	conns  map[*served]struct{} // TCP connections being served
	wg     sync.WaitGroup       // UDP servers and ServeConn calls
}

// query is one DNS query as the shim sees it.
type query struct {
	msg     *dns.Msg
	net     string        // "udp" or "tcp": how it came, and how it is forwarded
	who     origin.Origin // the process that asked, when known
	known   bool          // whether who is set
	verdict string        // "+" answered, "-" refused by the rule
	reason  string        // why refused
}

// Listen starts a shim with UDP sockets on 127.0.0.1 and [::1], each on its
// own ephemeral port (the BPF object is loaded with both, see [Shim.Ports]).
func Listen(cfg Config) (*Shim, error) {
	return listen(cfg, upstreamTimeout)
}

// listen is Listen with the upstream timeout as a parameter, for tests.
func listen(cfg Config, timeout time.Duration) (*Shim, error) {
	if cfg.Logger == nil {
		return nil, errors.New("start dns shim: no logger")
	}
	if _, _, err := net.SplitHostPort(cfg.Upstream); err != nil && cfg.Fake == nil {
		return nil, fmt.Errorf("start dns shim: upstream %q: %w", cfg.Upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Shim{
		log:          cfg.Logger,
		upstream:     cfg.Upstream,
		socketOrigin: cfg.SocketOrigin,
		fake:         cfg.Fake,
		rules:        cfg.Rules,
		events:       cfg.Events,
		secrets:      cfg.Secrets,
		seen:         newObserved(),
		timeout:      timeout,
		ctx:          ctx,
		cancel:       cancel,
		sem:          make(chan struct{}, maxInflight),
		conns:        make(map[*served]struct{}),
	}
	for _, addr := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		port, err := s.serveUDP(addr.network, addr.addr)
		if err != nil {
			s.Close()
			return nil, err
		}
		if addr.network == "udp4" {
			s.v4 = port
		} else {
			s.v6 = port
		}
	}
	return s, nil
}

// serveUDP binds addr and serves it until Close. It returns once the server
// runs, so that Close never races with its start (miekg/dns refuses to shut
// down a server that has not started yet).
func (s *Shim) serveUDP(network, addr string) (uint16, error) {
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return 0, fmt.Errorf("listen on %s %s: %w", network, addr, err)
	}
	return s.servePacketConn(pc, udpSocketCookie)
}

// servePacketConn serves pc until Close; cookie finds a client's socket
// in pc's network namespace.
func (s *Shim) servePacketConn(pc net.PacketConn, cookie func(client, shim netip.AddrPort) (uint64, error)) (uint16, error) {
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn: pc,
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			s.handleUDP(w, req, cookie)
		}),
		// The default is 512 bytes: a larger query (EDNS0 padding, many
		// options) would be cut and then answered FORMERR.
		UDPSize:           dns.MaxMsgSize,
		NotifyStartedFunc: func() { close(started) },
		MsgInvalidFunc: func(m []byte, err error) {
			s.malformed.Add(1)
			s.log.Debug("malformed dns query", "net", "udp", "bytes", len(m), "error", err)
		},
	}
	failed := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.ActivateAndServe()
		if err == nil {
			return
		}
		select {
		case <-started:
			// Serving failed after the start, not by Close: say so, as
			// the jail's DNS is now broken.
			if s.ctx.Err() == nil {
				s.log.Error("dns shim stopped serving", "net", "udp", "addr", pc.LocalAddr().String(), "error", err)
			}
		default:
			failed <- err // Listen reports it
		}
	}()
	select {
	case <-started:
	case err := <-failed:
		pc.Close()
		return 0, fmt.Errorf("serve dns on %s: %w", pc.LocalAddr(), err)
	}
	s.servers = append(s.servers, srv)
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port), nil
}

// Ports returns the UDP ports of the shim on 127.0.0.1 and [::1].
func (s *Shim) Ports() (v4, v6 uint16) {
	return s.v4, s.v6
}

// Close stops the UDP servers, aborts upstream exchanges, closes the TCP
// connections being served and waits until every goroutine of the shim,
// ServeConn calls included, has returned. It is safe to call more than once.
func (s *Shim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()

	s.cancel()
	var errs []error
	for _, srv := range s.servers {
		// Shutdown waits for the handlers in flight; the cancelled context
		// makes them finish at once.
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("stop dns server: %w", err))
		}
	}
	for sc := range conns {
		sc.c.Close()
	}
	s.wg.Wait()
	for _, c := range s.closers {
		c()
	}
	return errors.Join(errs...)
}

// handleUDP answers one query that arrived on a UDP socket of the shim.
func (s *Shim) handleUDP(w dns.ResponseWriter, req *dns.Msg, cookie func(client, shim netip.AddrPort) (uint64, error)) {
	q := &query{msg: req, net: "udp"}
	q.who, q.known = s.udpOrigin(w.RemoteAddr(), w.LocalAddr(), cookie)
	resp := s.respond(s.ctx, q)
	// The answer may have come over TCP, or the upstream may have allowed
	// more than the client: cut it to what the client can take, setting TC
	// so that it asks again over TCP.
	resp.Truncate(udpSize(req))
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("write dns answer", "net", "udp", "error", err)
	}
}

// udpSize is the largest UDP answer the client of req accepts.
func udpSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return int(opt.UDPSize()) // Truncate raises it to 512 if lower
	}
	return dns.MinMsgSize
}

// udpOrigin finds the process whose UDP socket sent a datagram from remote to
// the shim's socket local. The BPF program recorded it by socket cookie when
// the process called connect() or sendmsg(); the client's source port was
// not bound yet then, so the cookie is the only link, and sock_diag is how
// the shim learns it.
func (s *Shim) udpOrigin(remote, local net.Addr, findCookie func(client, shim netip.AddrPort) (uint64, error)) (origin.Origin, bool) {
	if s.socketOrigin == nil {
		return origin.Origin{}, false
	}
	client, ok := udpAddrPort(remote)
	if !ok {
		return origin.Origin{}, false
	}
	shim, ok := udpAddrPort(local)
	if !ok {
		return origin.Origin{}, false
	}
	cookie, err := findCookie(client, shim)
	if err != nil {
		s.log.Debug("find dns client socket", "client", client.String(), "error", err)
		return origin.Origin{}, false
	}
	who, err := s.socketOrigin(cookie)
	if err != nil {
		s.log.Debug("find dns client process", "client", client.String(), "cookie", cookie, "error", err)
		return origin.Origin{}, false
	}
	return who, true
}

func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}

// respond answers q, never with nil: an upstream failure becomes SERVFAIL.
// It logs the query.
func (s *Shim) respond(ctx context.Context, q *query) *dns.Msg {
	start := time.Now()
	var resp *dns.Msg
	var err error
	select {
	case s.sem <- struct{}{}:
		resp, err = s.answer(ctx, q)
		<-s.sem
	default:
		err = errBusy
	}
	if err != nil {
		resp = new(dns.Msg)
		resp.SetRcode(q.msg, dns.RcodeServerFailure)
	}
	s.logQuery(q, resp, time.Since(start), err)
	return resp
}

// answer decides the reply to one query: from the synthetic table in fake
// mode; in forward mode from the upstream, if the rule allows the name.
func (s *Shim) answer(ctx context.Context, q *query) (*dns.Msg, error) {
	if len(q.msg.Question) != 1 {
		// Every resolver asks one question per message; more is not
		// something to forward or fake.
		m := new(dns.Msg)
		m.SetRcode(q.msg, dns.RcodeFormatError)
		return m, nil
	}
	question := q.msg.Question[0]
	if secret := s.secrets.InName(question.Name); secret != "" {
		return s.refuseMisuse(q, question.Name, secret), nil
	}
	if s.fake != nil {
		q.verdict = "+"
		return s.fakeAnswer(q.msg, question), nil
	}
	if s.rules != nil {
		name := hostname.Fold(question.Name)
		proc := rules.Proc{PID: q.who.PID, PPID: q.who.PPID, UID: q.who.UID, Comm: q.who.Comm, Exe: q.who.Exe}
		req := rules.NewRequest("QUERY", rules.Dest{Scheme: "dns", Host: name, Port: 53}, nil, "127.0.0.1", proc)
		v := s.rules.Evaluate(ctx, req)
		if !v.Allow {
			q.verdict, q.reason = "-", v.Reason
			m := new(dns.Msg)
			m.SetRcode(q.msg, dns.RcodeNameError)
			return m, nil
		}
		q.verdict = "+"
	}
	resp, err := s.forward(ctx, q.msg, q.net)
	if err == nil {
		s.seen.record(question.Name, resp)
	}
	return resp, err
}

// fakeAnswer answers from the synthetic table: nothing leaves the machine.
func (s *Shim) fakeAnswer(req *dns.Msg, q dns.Question) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if q.Qclass != dns.ClassINET {
		return m
	}
	v4, v6, ok := s.fake.Addrs(q.Name)
	if !ok {
		// Every address is held by a name still in use: refuse rather
		// than take one away.
		m.SetRcode(req, dns.RcodeServerFailure)
		return m
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: fakeTTL}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: v4.AsSlice()})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: v6.AsSlice()})
	}
	// Any other type (HTTPS and SVCB included, so no ECH keys) gets an
	// empty answer: the name exists, it just has no such record.
	return m
}

// Malformed counts the messages dropped or answered FORMERR/NOTIMP
// because they did not parse as a query.
func (s *Shim) Malformed() uint64 { return s.malformed.Load() }

// Names returns the names whose forwarded answers contained a (forward
// mode), most recent first.
func (s *Shim) Names(a netip.Addr) []string { return s.seen.names(a) }

// forward sends req to the upstream over network ("udp" or "tcp") and returns
// its answer. A truncated UDP answer is fetched again over TCP.
func (s *Shim) forward(ctx context.Context, req *dns.Msg, network string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.exchange(ctx, req, network)
	if err == nil && network == "udp" && resp.Truncated {
		resp, err = s.exchange(ctx, req, "tcp")
	}
	return resp, err
}

func (s *Shim) exchange(ctx context.Context, req *dns.Msg, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: s.timeout}
	co, err := c.DialContext(ctx, s.upstream)
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s over %s: %w", s.upstream, network, err)
	}
	defer co.Close()
	// The exchange honours only the context's deadline; closing the
	// connection makes it honour cancellation too, so Close is prompt.
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()

	out := req.Copy()
	out.Id = dns.Id()
	resp, _, err := c.ExchangeWithConnContext(ctx, out, co)
	if err != nil {
		if ctx.Err() != nil {
			// The real cause: the conn was closed or timed out because of it.
			err = ctx.Err()
		}
		return nil, fmt.Errorf("ask upstream %s over %s: %w", s.upstream, network, err)
	}
	resp.Id = req.Id
	return resp, nil
}

// logQuery writes the one Info record of a query.
func (s *Shim) logQuery(q *query, resp *dns.Msg, d time.Duration, err error) {
	name, qtype := "", ""
	if len(q.msg.Question) > 0 {
		name = q.msg.Question[0].Name
		qtype = dns.Type(q.msg.Question[0].Qtype).String()
	}
	args := []any{"name", name, "type", qtype, "net", q.net}
	if q.known {
		args = append(args, "pid", q.who.PID, "comm", q.who.Comm, "uid", q.who.UID)
		if q.who.Dst.IsValid() {
			// The server the child asked, which the answer pretends to be.
			args = append(args, "server", q.who.Dst.String())
		}
	}
	if q.verdict != "" {
		args = append(args, "verdict", q.verdict)
	}
	if q.reason != "" {
		args = append(args, "reason", q.reason)
	}
	args = append(args, "rcode", rcodeString(resp.Rcode), "answers", len(resp.Answer))
	if a := firstAddr(resp); a != "" {
		args = append(args, "answer", a)
	}
	if s.fake == nil && q.verdict != "-" {
		args = append(args, "upstream", s.upstream)
	}
	args = append(args, "duration", d)
	if err != nil {
		args = append(args, "error", err)
	}
	// The event is the record; the log line is for debugging the shim.
	s.log.Debug("dns query", args...)
	if s.events != nil {
		e := event.Event{
			V: event.Version, Type: event.TypeDNS, Time: time.Now().UTC(),
			Name: asAsked(name), QType: qtype, Rcode: rcodeString(resp.Rcode), Answer: firstAddr(resp),
			Scheme: "dns", Verdict: event.Allow, Reason: q.reason, DurationMS: float64(d.Microseconds()) / 1000,
		}
		if q.verdict == "-" {
			e.Verdict = event.Deny
		}
		if err != nil {
			e.Reason = err.Error()
		}
		if q.known {
			e.PID, e.PPID, e.UID, e.Comm = q.who.PID, q.who.PPID, q.who.UID, q.who.Comm
			if q.who.ExeFrom == origin.ExeKernel {
				e.Exe = q.who.Exe
			}
			if q.who.Dst.IsValid() {
				e.Server = q.who.Dst.String()
			}
		}
		s.events(e)
	}
}

// asAsked is a query name for the record: the case the client sent is kept
// (a mixed-case label may be a payload a reviewer must see; matching folds
// it elsewhere), only the root's trailing dot goes.
func asAsked(name string) string {
	return strings.TrimSuffix(name, ".")
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}
