package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/sniff"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// peekTimeout is Config.PeekTimeout's default: a client that says
// nothing is dropped rather than pinning a goroutine (Timeouts bound the
// later phases).
const peekTimeout = 5 * time.Second

// classify peeks at what the client sends first and serves it as TLS, as
// HTTP, as TCP (--tcp), or refuses it. A client that says nothing at
// first may be waiting for the server to speak (silentClient).
func (p *Proxy) classify(c *conn, raw net.Conn) {
	// The peeking is a call of its own, off the stack once done (refuse).
	if res, pc, ok := p.firstBytes(c, raw); ok {
		p.dispatch(c, res, pc, raw)
	}
}

// firstBytes peeks at the client's first bytes; ok false means the
// connection was served (a server-first or --tcp one) or refused here.
func (p *Proxy) firstBytes(c *conn, raw net.Conn) (res sniff.Result, pc net.Conn, ok bool) {
	start := time.Now()
	res, pc, err := sniff.Peek(raw, p.window(start, serverFirstAfter))
	if silent(pc, err) {
		var served bool
		if res, pc, err, served = p.silentClient(c, pc, raw, start); served {
			return res, pc, false
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// It has begun: the rest of its first bytes may take what is
		// left of the whole peek window.
		res, pc, err = sniff.Peek(pc, p.window(start, p.cfg.PeekTimeout))
	}
	if err != nil && p.cfg.TCP && errors.Is(err, os.ErrDeadlineExceeded) {
		// A few bytes, then waiting for the server: not TLS nor HTTP.
		p.serveTCP(c, pc, raw)
		return res, pc, false
	}
	if err != nil {
		p.noRequest(c, err)
		return res, pc, false
	}
	return res, pc, true
}

// noRequest is the event of a connection that ended, or timed out, before
// its first bytes said what it is (out of classify's frame: refuse).
func (p *Proxy) noRequest(c *conn, err error) {
	c.log.Debug("connection closed before it said anything useful", "err", err)
	e := c.newEvent(event.TypeConnection)
	e.Verdict, e.Reason = event.Deny, "no request: "+err.Error()
	e.URL = "tcp://" + hostname.JoinPort(c.destHost(), c.port)
	p.emit(e)
}

// dispatch serves a classified connection.
func (p *Proxy) dispatch(c *conn, res sniff.Result, pc, raw net.Conn) {
	switch {
	case res.Kind == sniff.KindTLS:
		if c.directTLS && c.name == "" {
			c.port = 443 // as httpjail's HTTPS port: the server name on 443
		}
		p.serveTLS(c, pc, res)
	case res.Kind == sniff.KindHTTP:
		p.serveH1(c, pc)
	case p.cfg.TCP:
		p.serveTCP(c, pc, raw)
	default:
		p.refuseNonHTTP(c, raw)
	}
}

// refuseNonHTTP blocks non-HTTP TCP: a reset, and a line saying so (out
// of dispatch's frame: refuse).
func (p *Proxy) refuseNonHTTP(c *conn, raw net.Conn) {
	e := c.newEvent(event.TypeConnection)
	e.Verdict, e.Reason, e.Scheme = event.Deny, "non-HTTP", "tcp"
	e.URL, e.Host, e.Port = "tcp://"+hostname.JoinPort(c.destHost(), c.port), c.destHost(), c.port
	e.Hint = "--tcp lets the rule decide non-HTTP connections"
	p.emit(e)
	reset(raw)
}
