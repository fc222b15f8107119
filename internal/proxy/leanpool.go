package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The lean path's upstream connections, kept alive between requests per
// scheme and host:port (the Transport's key), on the same dialer (resolver,
// pins, local-address check) and with the same verified TLS.
const (
	// leanIdlePerHost is the Transport's MaxIdleConnsPerHost.
	leanIdlePerHost = 64
	// leanIdleTotal bounds the idle connections of all hosts together.
	leanIdleTotal = 512
	// leanIdleTimeout is the Transport's IdleConnTimeout.
	leanIdleTimeout = 30 * time.Second
	// leanSweepEvery is how often idle connections are looked at: those
	// the origin closed are closed too (the Transport's read loop notices
	// at once; here it takes up to this long), and those idle for
	// leanIdleTimeout.
	leanSweepEvery = time.Second
	// leanTLSTimeout is the Transport's TLSHandshakeTimeout.
	leanTLSTimeout = 10 * time.Second
	// leanUpReadBuf is the upstream reader, as the Transport's: room for
	// most response heads; a larger one is given more room (growHead).
	leanUpReadBuf = 4 << 10
)

// upConn is one upstream connection of the lean path.
type upConn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	key       string
	addr      string // the remote address, for the request's event
	idleSince time.Time
	// reused says it served a request before: a failure before any byte
	// of the response may be the origin having closed it meanwhile.
	reused bool
	// noReuse keeps it out of the pool once the request is done.
	noReuse bool
	// unhook undoes the hook that closes it when the proxy closes.
	unhook func() bool
}

func (u *upConn) close() {
	if u.unhook != nil {
		u.unhook()
	}
	u.nc.Close()
}

// leanPool holds idle upstream connections.
type leanPool struct {
	mu     sync.Mutex
	idle   map[string][]*upConn
	count  int
	timer  *time.Timer
	closed bool
	roots  *x509.CertPool
	dialer *dialer
	// ctx ends with the proxy, and closes every upstream connection in
	// use: a request waiting on its upstream ends with it.
	ctx context.Context
}

func newLeanPool(ctx context.Context, d *dialer, roots *x509.CertPool) *leanPool {
	return &leanPool{idle: map[string][]*upConn{}, roots: roots, dialer: d, ctx: ctx}
}

func leanKey(scheme, hostport string) string { return scheme + "|" + hostport }

// take returns an idle connection for key that is still open, nil if none.
func (lp *leanPool) take(key string) *upConn {
	for {
		lp.mu.Lock()
		list := lp.idle[key]
		if len(list) == 0 {
			lp.mu.Unlock()
			return nil
		}
		u := list[len(list)-1]
		list[len(list)-1] = nil
		lp.idle[key] = list[:len(list)-1]
		lp.count--
		lp.mu.Unlock()
		if time.Since(u.idleSince) < leanIdleTimeout && stillOpen(u.nc) {
			u.reused = true
			return u
		}
		u.close()
	}
}

// put keeps u for the next request to its host, or closes it.
func (lp *leanPool) put(u *upConn) {
	if u.noReuse || u.br.Buffered() > 0 {
		u.close()
		return
	}
	lp.mu.Lock()
	if lp.closed || lp.count >= leanIdleTotal || len(lp.idle[u.key]) >= leanIdlePerHost {
		lp.mu.Unlock()
		u.close()
		return
	}
	u.idleSince = time.Now()
	lp.idle[u.key] = append(lp.idle[u.key], u)
	lp.count++
	if lp.timer == nil {
		lp.timer = time.AfterFunc(leanSweepEvery, lp.sweep)
	}
	lp.mu.Unlock()
}

// sweep closes the connections idle for leanIdleTimeout or closed by
// their origin, and runs again while any are left.
func (lp *leanPool) sweep() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for key, list := range lp.idle {
		kept := list[:0]
		for _, u := range list {
			if time.Since(u.idleSince) >= leanIdleTimeout || !stillOpen(u.nc) {
				u.close()
				lp.count--
				continue
			}
			kept = append(kept, u)
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(lp.idle, key)
		} else {
			lp.idle[key] = kept
		}
	}
	lp.timer = nil
	if lp.count > 0 && !lp.closed {
		lp.timer = time.AfterFunc(leanSweepEvery, lp.sweep)
	}
}

// close closes every idle connection and keeps no more.
func (lp *leanPool) close() {
	lp.mu.Lock()
	lp.closed = true
	lp.mu.Unlock()
	lp.closeIdle()
}

// closeIdle closes the idle connections.
func (lp *leanPool) closeIdle() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for key, list := range lp.idle {
		for _, u := range list {
			u.close()
		}
		delete(lp.idle, key)
	}
	lp.count = 0
	if lp.timer != nil {
		lp.timer.Stop()
	}
}

// dial opens a new connection for fw (scheme https: verified TLS for
// host, as the Transport does).
func (lp *leanPool) dial(ctx context.Context, fw *forward, host string) (*upConn, error) {
	ctx = withForward(ctx, fw)
	nc, err := lp.dialer.DialContext(ctx, "tcp", fw.hostport)
	if err != nil {
		return nil, err
	}
	if fw.scheme == "https" {
		tc := tls.Client(nc, &tls.Config{RootCAs: lp.roots, MinVersion: tls.VersionTLS12, ServerName: host, NextProtos: []string{"http/1.1"}})
		hctx, cancel := context.WithTimeout(ctx, leanTLSTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	u := &upConn{
		nc: nc, br: bufio.NewReaderSize(nc, leanUpReadBuf), bw: bufio.NewWriterSize(nc, 4<<10),
		key: leanKey(fw.scheme, fw.hostport), addr: nc.RemoteAddr().String(),
	}
	if lp.ctx != nil {
		u.unhook = context.AfterFunc(lp.ctx, func() { nc.Close() })
	}
	return u, nil
}

// stillOpen asks the kernel, without reading, whether the origin closed
// an idle connection (or sent something unasked, which makes it unusable
// too): what the Transport learns from its read loop goroutine.
func stillOpen(nc net.Conn) bool {
	tc := tcpConn(nc)
	if tc == nil {
		return true
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	raw.Control(func(fd uintptr) {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = errors.Is(err, unix.EAGAIN)
	})
	return open
}
