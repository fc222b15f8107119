package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// blockedBody starts every 403 the proxy writes (then the rule's
// deny_message, if any): httpjail's wording, which scripts look for.
const blockedBody = "Request blocked by ebpfjail\n"

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
		p.serveRequest(c, w, r, start)
	})
}

// serveRequest decides where r goes and whether the rule lets it, then
// forwards it or answers the refusal itself.
func (p *Proxy) serveRequest(c *conn, w http.ResponseWriter, r *http.Request, start time.Time) {
	t, bad := p.requestTarget(c, r)
	if bad != "" {
		p.refuseTarget(c, w, r, bad)
		return
	}
	if p.refuseSecretMisuse(c, w, r, t) {
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
	p.forwardRequest(c, w, r, t, tx, e, start)
}

// refuseTarget answers 403 to a request whose target is refused (bad
// says why), before any rule.
func (p *Proxy) refuseTarget(c *conn, w http.ResponseWriter, r *http.Request, bad string) {
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme = r.Method, c.scheme+"://"+r.Host+r.URL.RequestURI(), c.scheme
	e.Verdict, e.Reason, e.Status = event.Deny, bad, http.StatusForbidden
	p.emit(e)
	writeText(w, http.StatusForbidden, blockedBody)
}

// forwardRequest sends an allowed request upstream and its response back,
// counting both ways, and emits e, the request's event, once it is done.
func (p *Proxy) forwardRequest(c *conn, w http.ResponseWriter, r *http.Request, t target, tx *txBudget, e event.Event, start time.Time) {
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
	p.armSecrets(c, r, t, fw)
	fw.rc = rc
	ctx = withUpstreamTrace(withForward(ctx, fw), fw)
	ctx = context.WithValue(ctx, watchKey{}, watch)
	finish := func() {
		e.Status, e.BytesDown, e.DurationMS = cw.status, cw.n, sinceMS(start)
		e.Upstream = fw.upstreamAddr()
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
		if fw.misuse != nil {
			p.emitMisuse(&e, *fw.misuse)
			return
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
