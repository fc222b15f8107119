package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// serveTCP asks the rule about a non-HTTP connection (scheme "tcp", url
// tcp://host:port, host the name behind a synthetic address, else the
// address) and splices it upstream if allowed.
func (p *Proxy) serveTCP(c *conn, pc, raw net.Conn) {
	t := target{host: c.destHost(), port: c.port}
	if c.name != "" {
		t.host = c.name // inside a CONNECT tunnel
	}
	if !validTarget(t) {
		e := c.newEvent(event.TypeConnection)
		e.Verdict, e.Reason = event.Deny, fmt.Sprintf("not a host and port ebpfjail can vouch for: %q port %d", t.host, t.port)
		p.emit(e)
		reset(raw)
		return
	}
	p.splice(c, p.scanTCP(c, pc, t), raw, t, c.connectRequest("tcp", t))
}

// spliceTLS asks the rule once for the whole connection (method CONNECT,
// url https://host:port) and, if allowed, splices the bytes unopened: the
// client sees the origin's own certificate.
func (p *Proxy) spliceTLS(c *conn, pc net.Conn) {
	t := target{host: c.name, port: c.port}
	p.splice(c, pc, nil, t, c.connectRequest("https", t))
}

// splice decides req once for the whole connection and, if allowed,
// copies the bytes both ways unopened.
func (p *Proxy) splice(c *conn, pc, raw net.Conn, t target, req *rules.Request) {
	if p.refuseSecretHost(c, t, req) {
		if raw != nil {
			reset(raw)
		}
		return
	}
	v := p.cfg.Rules.Evaluate(p.ctx, req)
	e := c.requestEvent(req, v)
	if !v.Allow {
		p.emit(e)
		if raw != nil {
			reset(raw)
		}
		return
	}
	up, err := p.dialSplice(c, t)
	if err != nil {
		p.unreachable(e, err, raw)
		return
	}
	e.Upstream = up.RemoteAddr().String()
	p.relay(pc, up, e, v)
}

// dialSplice connects to t for a connection decided once, preferring the
// child's original address.
func (p *Proxy) dialSplice(c *conn, t target) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(withForward(p.ctx, &forward{dialIP: c.dialIP}), dialTimeout)
	defer cancel()
	return p.dialer.DialContext(ctx, "tcp", t.hostport())
}

// unreachable ends an allowed connection whose upstream could not be
// dialed: e says why, and the client (raw, if any) is reset.
func (p *Proxy) unreachable(e event.Event, err error, raw net.Conn) {
	e.Reason = "upstream unreachable: " + err.Error()
	markLocal(&e, err)
	p.emit(e)
	if raw != nil {
		reset(raw)
	}
}

// relay copies an allowed connection's bytes both ways until both ends are
// done, then emits e with the counts.
func (p *Proxy) relay(pc, up net.Conn, e event.Event, v rules.Verdict) {
	p.track(up, true)
	defer p.track(up, false)
	start := time.Now()
	var idled atomic.Bool
	stop := tunnelWatch(p.cfg.Timeouts.TunnelIdle, func() {
		idled.Store(true)
		pc.Close()
		up.Close()
	}, pc, up)
	var cut, ok bool
	if e.BytesUp, e.BytesDown, ok = p.kernelPipe(pc, up, v.MaxTxBytes); !ok {
		e.BytesUp, e.BytesDown, cut = pipe(pc, up, v.MaxTxBytes)
	}
	stop()
	e.DurationMS = sinceMS(start)
	if idled.Load() {
		e.Reason = fmt.Sprintf("closed: no traffic either way for %v", p.cfg.Timeouts.TunnelIdle)
	}
	if cut {
		e.Reason = fmt.Sprintf("max_tx_bytes: the connection was cut at the %d-byte limit", v.MaxTxBytes)
	}
	p.emit(e)
}

// pipe copies both ways until both directions are done, half-closing each
// side as its source ends. Between two *net.TCPConn io.Copy uses splice(2).
// maxUp > 0 limits what the client sends (copyLimit); cut says it tried
// to send more.
func pipe(client, up net.Conn, maxUp int64) (sent, recv int64, cut bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if recv, err = io.Copy(client, up); brokenCopy(err) {
			// A reset on one side resets the other.
			reset(client)
			reset(up)
		}
		closeWrite(client)
	}()
	sent, cut = copyLimit(up, client, maxUp)
	closeWrite(up)
	wg.Wait()
	client.Close()
	up.Close()
	return sent, recv, cut
}

// closeWrite half-closes c when it can (so the peer sees EOF but can still
// answer), else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
