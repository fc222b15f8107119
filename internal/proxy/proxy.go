package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
)

// dialTimeout bounds connecting upstream; the client's own connect() already
// succeeded (it reached us), so a dead upstream shows as a reset.
const dialTimeout = 10 * time.Second

// Config is what the listener needs from the rest of ebpfjail.
type Config struct {
	Logger *slog.Logger
	// OrigDst returns the kernel's record for the client end peer.
	OrigDst func(peer netip.AddrPort) (bpf.Origin, error)
	// DNS serves a connection the jail made to TCP port 53.
	DNS func(c net.Conn, who bpf.Origin)
	// Dial connects upstream; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Proxy is the transparent listener on 127.0.0.1 and [::1].
type Proxy struct {
	cfg    Config
	lns    []net.Listener
	ports  [2]uint16
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	nextID atomic.Uint64
}

// Listen binds the listener (ephemeral ports) and starts serving.
func Listen(cfg Config) (*Proxy, error) {
	if cfg.Logger == nil || cfg.OrigDst == nil {
		return nil, errors.New("proxy: Logger and OrigDst are required")
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		cfg.Dial = d.DialContext
	}
	p := &Proxy{cfg: cfg, conns: map[net.Conn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for i, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		network := "tcp4"
		if i == 1 {
			network = "tcp6"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		p.lns = append(p.lns, ln)
		p.ports[i] = uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range p.lns {
		p.wg.Add(1)
		go p.serve(ln)
	}
	return p, nil
}

// Ports returns the IPv4 and IPv6 listener ports.
func (p *Proxy) Ports() (v4, v6 uint16) { return p.ports[0], p.ports[1] }

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
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
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
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			p.handle(c.(*net.TCPConn))
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

func (p *Proxy) isSelf(dst netip.AddrPort) bool {
	if !dst.Addr().IsLoopback() && !dst.Addr().IsUnspecified() {
		return false
	}
	return dst.Port() == p.ports[0] || dst.Port() == p.ports[1]
}

// reset closes c with an RST, so the client sees a refusal, not an EOF.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

func (p *Proxy) handle(c *net.TCPConn) {
	id := p.nextID.Add(1)
	peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	log := p.cfg.Logger.With("conn", id)
	who, err := p.cfg.OrigDst(peer)
	if err != nil {
		// Not from the jail, or its record is gone: never dial locally.
		log.Warn("refused connection without a record", "peer", peer.String(), "err", err)
		reset(c)
		return
	}
	log = log.With("dst", who.Dst.String(), "pid", who.PID, "comm", who.Comm, "uid", who.UID)
	if p.isSelf(who.Dst) {
		log.Warn("refused connection to the listener itself")
		reset(c)
		return
	}
	if who.Dst.Port() == 53 && p.cfg.DNS != nil {
		log.Debug("dns over tcp")
		p.cfg.DNS(c, who)
		c.Close()
		return
	}
	start := time.Now()
	up, err := p.cfg.Dial(p.ctx, "tcp", who.Dst.String())
	if err != nil {
		log.Info("upstream unreachable", "err", err)
		reset(c)
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	sent, recv := pipe(c, up)
	log.Info("connection", "sent", sent, "received", recv, "duration", time.Since(start).Round(time.Millisecond).String())
}

// pipe copies both ways until both directions are done, half-closing each
// side as its source ends. Between two *net.TCPConn io.Copy uses splice(2).
func pipe(client *net.TCPConn, up net.Conn) (sent, recv int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recv, _ = io.Copy(client, up)
		client.CloseWrite()
	}()
	sent, _ = io.Copy(up, client)
	if tc, ok := up.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		up.Close()
	}
	wg.Wait()
	client.Close()
	up.Close()
	return sent, recv
}
