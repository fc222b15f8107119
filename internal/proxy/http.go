package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/origin"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// blockedBody starts every 403 the proxy writes (DESIGN.md §1.6).
const blockedBody = "Request blocked by ebpfjail\n"

// conn is what the pipeline knows about one accepted connection.
type conn struct {
	id   uint64
	who  origin.Origin
	proc rules.Proc
	// scheme is "http" or "https" (MITM'd TLS).
	scheme string
	// name is the TLS server name (https) or the CONNECT host the client
	// named; "" for plain HTTP, whose name comes per request from Host.
	name string
	// port is the destination port the child asked for.
	port int
	// dialIP is the child's original destination address, dialed only when
	// it belongs to the request's host; invalid inside a CONNECT tunnel and
	// for synthetic (fake DNS) addresses.
	dialIP netip.Addr
	// destName is the name a synthetic destination address stands for.
	destName    string
	requesterIP string
	log         *slog.Logger
}

// target is where one request goes, after the checks of DESIGN.md §1.5.
type target struct {
	host string // no port, IPv6 without brackets
	port int
}

func (t target) hostport() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// splitHost splits a Host header value into a normalised host and a port
// (0 when absent, -1 when it is not a port number).
func splitHost(h string) (string, int) {
	if host, p, err := net.SplitHostPort(h); err == nil {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil || port == 0 {
			return normalizeHost(host), -1
		}
		return normalizeHost(host), int(port)
	}
	return normalizeHost(h), 0
}

// requestTarget decides where r goes (resolveTarget, with fake DNS
// addresses replaced by their names) or why it must be denied.
func (p *Proxy) requestTarget(c *conn, r *http.Request) (target, string) {
	t, bad := c.resolveTarget(r)
	if bad != "" {
		return t, bad
	}
	t.host = p.unsynth(t.host)
	if !validTarget(t) {
		return t, fmt.Sprintf("not a host and port ebpfjail can vouch for: %q port %d", t.host, t.port)
	}
	if p.isLoop(t) {
		return t, "Loop detected: a request to ebpfjail's own proxy"
	}
	return t, ""
}

// connectTarget is the host and port of a CONNECT request, if valid.
func connectTarget(r *http.Request) (target, bool) {
	host, port := splitHost(r.Host)
	t := target{host: host, port: port}
	return t, validTarget(t)
}

// validTarget reports whether t names a host ebpfjail may resolve and a
// port it may dial: a DNS name of letters, digits, '-' and '_' labels, or an
// IP address without a zone. Anything else could mean one host to the rule
// (which may parse r.url) and another to the resolver.
func validTarget(t target) bool {
	return t.port >= 1 && t.port <= 65535 && validHost(t.host)
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	return hostname.Valid(h)
}

// resolveTarget decides where r goes, or why it must be denied.
func (c *conn) resolveTarget(r *http.Request) (target, string) {
	hhost, hport := splitHost(r.Host)
	if c.scheme == "https" || c.name != "" {
		// The name was fixed by the TLS handshake (or CONNECT line): a Host
		// naming another host would reach a host the rule never saw.
		if r.Host != "" && hhost != c.name {
			return target{}, fmt.Sprintf("Host %q differs from the server name %q", r.Host, c.name)
		}
		return target{host: c.name, port: c.port}, ""
	}
	if r.URL.IsAbs() {
		uhost, uport := splitHost(r.URL.Host)
		if uport == 0 {
			uport = defaultPort(r.URL.Scheme)
		}
		if r.URL.Scheme != "http" {
			return target{}, fmt.Sprintf("scheme %q in a plain HTTP request", r.URL.Scheme)
		}
		if r.Host != "" && (hhost != uhost || (hport != 0 && hport != uport)) {
			return target{}, fmt.Sprintf("Host %q differs from the URL's host %q", r.Host, r.URL.Host)
		}
		return target{host: uhost, port: uport}, ""
	}
	if hhost == "" {
		// HTTP/1.0 without Host: all we know is where it went.
		return target{host: c.destHost(), port: c.port}, ""
	}
	if hport == 0 {
		hport = c.port
	}
	return target{host: hhost, port: hport}, ""
}

// isLoop reports whether t is this proxy itself (explicit mode, where a
// client can name any address).
func (p *Proxy) isLoop(t target) bool {
	if p.cfg.Explicit == "" {
		return false
	}
	local := p.Addr().(*net.TCPAddr)
	if t.port != local.Port {
		return false
	}
	if t.host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(t.host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	la, _ := netip.AddrFromSlice(local.IP)
	return a.IsLoopback() || a.IsUnspecified() || a == la.Unmap()
}

// destHost names the destination without help from the client: the name
// behind a synthetic address, else the address.
func (c *conn) destHost() string {
	if c.destName != "" {
		return c.destName
	}
	if !c.who.Dst.IsValid() {
		return "unknown" // explicit mode: only the client's words say where
	}
	return c.who.Dst.Addr().Unmap().String()
}

// ruleRequest builds the object the rule sees for r going to t.
func (c *conn) ruleRequest(r *http.Request, t target) *rules.Request {
	u := c.scheme + "://"
	if strings.Contains(t.host, ":") {
		u += "[" + t.host + "]"
	} else {
		u += t.host
	}
	if t.port != defaultPort(c.scheme) {
		u += ":" + strconv.Itoa(t.port)
	}
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		// "" or the asterisk-form of OPTIONS: keep the URL's host the host.
		path = "/" + path
	}
	u += path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return &rules.Request{
		URL: u, Method: r.Method, Scheme: c.scheme, Host: t.host, Port: t.port,
		Path: r.URL.Path, RequesterIP: c.requesterIP, Proc: c.proc,
	}
}

// writeText writes a response the proxy made itself.
func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// httpjail's marker, so scripts written for it still recognise us.
	h.Set("HTTPJAIL", "true")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// handler decides and forwards each request of one client connection.
func (p *Proxy) handler(c *conn) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Method == http.MethodConnect {
			// Every CONNECT, the first on a connection or one inside
			// intercepted TLS or a tunnel, is answered here: forwarded, it
			// would have the origin (were it a proxy) open a tunnel to a
			// port the rule never saw.
			p.serveConnect(c, w, r)
			return
		}
		// A CONNECT tunnel is a connection, not a request: only the
		// requests inside it take a slot.
		if !p.admit(r.Context()) {
			p.refuseBusy(c, w, r)
			return
		}
		defer p.release()
		t, bad := p.requestTarget(c, r)
		if bad != "" {
			e := c.newEvent(event.TypeRequest)
			e.Method, e.URL, e.Scheme = r.Method, c.scheme+"://"+r.Host+r.URL.RequestURI(), c.scheme
			e.Verdict, e.Reason, e.Status = event.Deny, bad, http.StatusForbidden
			p.emit(e)
			writeText(w, http.StatusForbidden, blockedBody)
			return
		}
		req := c.ruleRequest(r, t)
		v := p.cfg.Rules.Evaluate(r.Context(), req)
		e := c.requestEvent(req, v)
		if !v.Allow {
			e.Status = http.StatusForbidden
			p.emit(e)
			msg := blockedBody
			if v.DenyMessage != "" {
				msg += v.DenyMessage
			}
			writeText(w, http.StatusForbidden, msg)
			return
		}
		tx := limitBody(w, r, v.MaxTxBytes)
		if tx == nil {
			e.Verdict, e.Reason, e.Status = event.Deny, "max_tx_bytes", http.StatusRequestEntityTooLarge
			p.emit(e)
			return
		}
		rc := http.NewResponseController(w)
		cw := &countingWriter{ResponseWriter: w, rc: rc, idle: p.cfg.Timeouts.ClientIdle}
		ctx, watch, stopWatch := watchUpstream(r.Context(), p.cfg.Timeouts.UpstreamIdle)
		defer stopWatch()
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: &idleBody{ReadCloser: r.Body, rc: rc, idle: p.cfg.Timeouts.ClientIdle, watch: watch}}
			r.Body = body
		}
		fw := &forward{scheme: c.scheme, hostport: t.hostport(), dialIP: c.dialIP, tx: tx}
		ctx = context.WithValue(ctx, forwardKey{}, fw)
		ctx = context.WithValue(ctx, watchKey{}, watch)
		finish := func() {
			e.Status, e.BytesDown, e.DurationMS = cw.status, cw.n, sinceMS(start)
			if fw.err != "" {
				e.Reason = "upstream error: " + fw.err
			}
			if fw.local != nil {
				markLocal(&e, fw.local)
			}
			if body != nil {
				e.BytesUp = body.n
			}
			e.BytesUp += tx.upgraded.Load()
			if cut := tx.reason(); cut != "" {
				e.Reason = cut
			}
			p.emit(e)
		}
		// A response that cannot be copied to the end (the origin closed or
		// reset mid-body, or the client went away) makes ReverseProxy panic
		// with http.ErrAbortHandler, so the client's connection is cut
		// rather than a short body passed off as complete. The event is
		// still written, on the way out.
		aborted := true
		defer func() {
			if aborted {
				if fw.err == "" {
					e.Reason = "response cut short: the client went away"
				}
				finish()
			}
		}()
		rp := p.h1
		if r.ProtoMajor == 2 {
			rp = p.h2
		}
		rp.ServeHTTP(cw, r.WithContext(ctx))
		aborted = false
		finish()
	})
}

// cutBody records why an upstream response body ended early, for the
// request's event: ReverseProxy only aborts the client's connection.
type cutBody struct {
	io.ReadCloser
	reason *string
	ctx    context.Context
	watch  *upstreamWatch
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.watch.touch()
	}
	if err != nil && err != io.EOF && *b.reason == "" {
		if errors.Is(context.Cause(b.ctx), errUpstreamIdle) {
			*b.reason = fmt.Sprintf("response body cut short: nothing from upstream for %v", b.watch.idle)
		} else {
			*b.reason = "response body cut short: " + err.Error()
		}
	}
	return n, err
}

// forward is where the forwarder sends one request, and what it reports
// back; it travels in the request's context under forwardKey.
type forward struct {
	scheme   string
	hostport string
	// dialIP is the child's original destination (see conn.dialIP).
	dialIP netip.Addr
	// err is why the upstream failed, for the request's event.
	err string
	// tx is what the rule lets the client send (max_tx_bytes), upgraded
	// connections included.
	tx *txBudget
	// local is set when the name led to this host itself (checkLocal).
	local error
}

type forwardKey struct{}

// copyBuffers recycles the ReverseProxy's body copy buffers: without a
// pool it allocates 32 KiB per request, 71% of the bytes a kept-alive
// request allocated, and the GC work that comes with them.
var copyBuffers httputil.BufferPool = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// newForwarder proxies requests to where their forward says. Known-length
// bodies are buffered by the server's writer and flushed when it fills or
// the response ends (FlushInterval 0: a flush per write cost a syscall and
// a TLS record each); the ReverseProxy still flushes every write of a body
// of unknown length and of text/event-stream, so streams and long polls
// are not held back.
func newForwarder(t *http.Transport) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			fw := pr.In.Context().Value(forwardKey{}).(*forward)
			pr.Out.URL.Scheme = fw.scheme
			pr.Out.URL.Host = fw.hostport
			// Keep the client's Host (checked against the target above).
			pr.Out.Host = pr.In.Host
		},
		Transport:  t,
		BufferPool: copyBuffers,
		ErrorLog:   discardLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			fw, _ := r.Context().Value(forwardKey{}).(*forward)
			if errors.Is(context.Cause(r.Context()), errUpstreamIdle) {
				uw, _ := r.Context().Value(watchKey{}).(*upstreamWatch)
				msg := fmt.Sprintf("no response from upstream for %v", uw.idle)
				if fw != nil {
					fw.err = msg
				}
				writeText(w, http.StatusGatewayTimeout, "Upstream error: "+msg+"\n")
				return
			}
			if fw != nil {
				fw.err = err.Error()
			}
			if refuseLocal(w, fw, err) {
				return
			}
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			writeText(w, http.StatusBadGateway, "Upstream error: "+err.Error()+"\n")
		},
		ModifyResponse: func(res *http.Response) error {
			ctx := res.Request.Context()
			watch, _ := ctx.Value(watchKey{}).(*upstreamWatch)
			if res.StatusCode == http.StatusSwitchingProtocols {
				watch.halt() // cancelling the request would close the upgraded connection
				if fw, ok := ctx.Value(forwardKey{}).(*forward); ok && fw.tx != nil {
					if up, ok := res.Body.(io.ReadWriteCloser); ok {
						res.Body = fw.tx.wrapUpgraded(up)
					}
				}
			}
			watch.touch()
			// Not a 101: ReverseProxy needs the upgraded body's own type
			// (and an upgraded connection is a tunnel, no longer watched).
			if fw, ok := ctx.Value(forwardKey{}).(*forward); ok && res.StatusCode != http.StatusSwitchingProtocols {
				res.Body = &cutBody{ReadCloser: res.Body, reason: &fw.err, ctx: ctx, watch: watch}
			}
			return nil
		},
	}
}

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

// serveHTTP1 serves HTTP/1.x on one connection until it closes, and until
// a handler that took the connection over (an upgrade) is done with it.
func serveHTTP1(c net.Conn, h http.Handler, t Timeouts, errorLog *log.Logger) {
	ln := &oneConnListener{conn: c, done: make(chan struct{})}
	var running sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running.Add(1)
			defer running.Done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: t.Header,
		IdleTimeout:       t.KeepAlive,
		// A larger head is answered 431.
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       errorLog,
		// Not nil: HTTP/2 is served apart (serveTLS), and a nil map makes
		// every per-connection server set HTTP/2 up anyway (about 1 KiB and
		// some CPU per connection).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				ln.Close()
			}
		},
	}
	srv.Serve(ln)
	running.Wait()
}

// oneConnListener hands out one connection, then blocks until it is done.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	used bool
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
