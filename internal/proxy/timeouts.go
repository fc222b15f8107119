package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts bound the waits of the pipeline. Where data flows they are idle
// (no-progress) timeouts, not totals: a large download, a long upload, a
// server-sent event stream or a long poll goes on as long as bytes move.
type Timeouts struct {
	// Handshake bounds a client's TLS handshake.
	Handshake time.Duration
	// Header bounds how long a client may take to send a request's head.
	Header time.Duration
	// KeepAlive is how long a client connection may sit idle between
	// requests.
	KeepAlive time.Duration
	// ClientIdle drops a request whose client sends none of the request
	// body, or takes none of the response, for this long.
	ClientIdle time.Duration
	// UpstreamIdle drops a request whose upstream sends nothing (no
	// response head, no body byte) for this long: 504 before the head, a
	// cut response after it. Long polls wait up to this long.
	UpstreamIdle time.Duration
	// TunnelIdle closes a spliced connection (--tcp, --no-mitm, a CONNECT
	// tunnel) on which no byte moved either way for this long; the check
	// runs every TunnelIdle, so the close comes between one and two
	// TunnelIdle after the last byte.
	TunnelIdle time.Duration
}

// DefaultTimeouts are nginx's order of magnitude for the client side
// (client_body_timeout, send_timeout), generous for upstreams (long polls)
// and for tunnels (an idle SSH session through --tcp).
var DefaultTimeouts = Timeouts{
	Handshake:    10 * time.Second,
	Header:       60 * time.Second,
	KeepAlive:    5 * time.Minute,
	ClientIdle:   60 * time.Second,
	UpstreamIdle: 5 * time.Minute,
	TunnelIdle:   time.Hour,
}

func (t Timeouts) withDefaults() Timeouts {
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{
		{&t.Handshake, DefaultTimeouts.Handshake},
		{&t.Header, DefaultTimeouts.Header},
		{&t.KeepAlive, DefaultTimeouts.KeepAlive},
		{&t.ClientIdle, DefaultTimeouts.ClientIdle},
		{&t.UpstreamIdle, DefaultTimeouts.UpstreamIdle},
		{&t.TunnelIdle, DefaultTimeouts.TunnelIdle},
	} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	return t
}

// idleBody fails a request body read on which the client makes no
// progress for idle. The deadline is the connection's (HTTP/1) or the
// stream's (HTTP/2); net/http clears it once the body is read.
//
// While the body flows the upstream is taking it, not keeping us waiting:
// each chunk restarts the upstream watch, so a slow upload is not taken
// for a silent upstream.
type idleBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	watch *upstreamWatch
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.watch.touch()
	}
	return n, err
}

// errUpstreamIdle is the cause of a request cancelled by its upstream
// watchdog.
var errUpstreamIdle = errors.New("upstream idle")

// upstreamWatch cancels a request's context once the upstream has sent
// nothing for idle; touch restarts the count (a response head, a body
// read), stop ends the watch.
type upstreamWatch struct {
	timer  *time.Timer
	idle   time.Duration
	halted atomic.Bool
}

func watchUpstream(ctx context.Context, idle time.Duration) (context.Context, *upstreamWatch, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &upstreamWatch{idle: idle}
	w.timer = time.AfterFunc(idle, func() { cancel(errUpstreamIdle) })
	return ctx, w, func() {
		w.timer.Stop()
		cancel(nil)
	}
}

func (w *upstreamWatch) touch() {
	if w != nil && !w.halted.Load() {
		w.timer.Reset(w.idle)
	}
}

// halt ends the watch without cancelling anything.
func (w *upstreamWatch) halt() {
	if w != nil {
		w.halted.Store(true)
		w.timer.Stop()
	}
}

type watchKey struct{}

// tunnelWatch closes a spliced connection once no byte has moved on it
// for idle. It asks the kernel (TCP_INFO: bytes received, and bytes sent
// and acknowledged, on both sockets) rather than counting in the copy, so
// the copy can stay a splice(2), which reports nothing until it ends.
// Without a TCP socket to ask (not expected) it never fires.
func tunnelWatch(idle time.Duration, onIdle func(), conns ...net.Conn) (stop func()) {
	var tcps []*net.TCPConn
	for _, c := range conns {
		if tc := tcpConn(c); tc != nil {
			tcps = append(tcps, tc)
		}
	}
	if len(tcps) == 0 || idle <= 0 {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		last    uint64
		timer   *time.Timer
	)
	last = moved(tcps)
	timer = time.AfterFunc(idle, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if now := moved(tcps); now != last {
			last = now
			timer.Reset(idle)
			return
		}
		stopped = true
		onIdle()
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		timer.Stop()
	}
}

// tcpConn finds the TCP connection under c's wrappers.
func tcpConn(c net.Conn) *net.TCPConn {
	for c != nil {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }: // *tls.Conn
			c = v.NetConn()
		case interface{ Unwrap() net.Conn }: // sniff.Conn, prefixConn
			c = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
