package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// The lean path serves the common HTTP/1.1 request (MITM'd or plain)
// without net/http's server and Transport: the head is parsed once into a
// slice of fields (leanparse.go), decided as on the existing path, written
// to a pooled upstream connection with only the hop-by-hop headers
// changed, and the body and response are streamed on the connection's own
// goroutine, without per-request goroutines or header maps. A request it
// does not take (leanparse.go says which, or a body over leanMaxBody) is
// handed, with the rest of the connection, to serveHTTP1, which then
// serves that connection to its end. With secrets configured every
// connection takes the existing path: the swap, redaction and misuse
// checks work on net/http's requests.

const (
	// leanMaxBody is the largest request body the lean path sends: it
	// sends a body whole before it reads the response, which a small body
	// cannot deadlock (it fits the sockets' buffers), and a body the rule
	// refuses is read and dropped to keep the connection, as net/http's
	// server does up to the same size.
	leanMaxBody = 256 << 10
	// leanReadBuf holds a client's request head (net/http's server reads
	// through as much, so an open connection costs no more); a larger head
	// goes to net/http.
	leanReadBuf = 4 << 10
	// leanWriteBuf gathers an answer's head (and small bodies) into one
	// write.
	leanWriteBuf = 4 << 10
)

// leanClient is a client connection served on the lean path.
type leanClient struct {
	c  *conn
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	t  Timeouts
	// watch notices the client going away during long upstream waits.
	watch *clientWatch
	// first is what br reads for a TLS client (pooledReads): the byte
	// that ended an idle wait, then the connection.
	first       leanFirst
	pooledReads bool
}

// leanFirst is a client connection with the byte that ended an idle wait
// put back in front of it.
type leanFirst struct {
	nc      net.Conn
	b       [1]byte
	pending bool
}

func (f *leanFirst) Read(p []byte) (int, error) {
	if f.pending && len(p) > 0 {
		p[0], f.pending = f.b[0], false
		return 1, nil
	}
	return f.nc.Read(p)
}

// serveH1 serves HTTP/1.x on pc: the lean way while its requests allow,
// then net/http's.
func (p *Proxy) serveH1(c *conn, pc net.Conn) {
	if p.cfg.Secrets != nil {
		serveHTTP1(pc, p.handler(c), p.cfg.Timeouts, p.errorLog)
		return
	}
	lc := &leanClient{c: c, nc: pc, t: p.cfg.Timeouts, watch: newClientWatch(pc)}
	if c.scheme == "https" {
		// TLS keeps what it decrypted and we did not read yet inside the
		// tls.Conn, so a 1-byte read there ends an idle wait without an
		// extra system call: its read buffer can go back to the pool
		// between requests (waitNext).
		lc.first.nc, lc.pooledReads = pc, true
		lc.br = leanReaders.Get().(*bufio.Reader)
		lc.br.Reset(&lc.first)
	} else {
		lc.br = bufio.NewReaderSize(pc, leanReadBuf)
	}
	if !p.serveLean(lc) {
		// As net/http's server ends a connection: a TLS client gets its
		// close_notify.
		pc.Close()
		return
	}
	pc.SetDeadline(time.Time{})
	serveHTTP1(&leanRest{Conn: pc, br: lc.br}, p.handler(c), p.cfg.Timeouts, p.errorLog)
}

// serveLean serves requests until the connection ends (false) or a
// request is for net/http (true: nothing of it was read yet).
func (p *Proxy) serveLean(lc *leanClient) (handoff bool) {
	defer lc.idle()
	for first := true; ; first = false {
		if !first {
			lc.idle()
			lc.nc.SetReadDeadline(time.Now().Add(lc.t.KeepAlive))
			if lc.waitNext() != nil {
				return false
			}
		}
		lc.busy()
		if more, handoff := p.leanNext(lc); !more {
			return handoff
		}
	}
}

// leanNext reads and serves the next request: more says the connection
// goes on, handoff that the request is for net/http (nothing of it was
// read yet). The parsed head lives in this frame, not in serveLean's,
// which stays on the stack while the connection idles (refuse).
func (p *Proxy) leanNext(lc *leanClient) (more, handoff bool) {
	lc.nc.SetReadDeadline(time.Now().Add(lc.t.Header))
	head, err := readLeanHead(lc.br)
	if err != nil {
		return false, false
	}
	if head == nil {
		return false, true
	}
	h, ok := parseLeanRequest(head)
	if !ok || h.contentLength > leanMaxBody {
		return false, true
	}
	lc.br.Discard(len(head))
	return p.leanRequest(lc, &h), false
}

// leanWriters are the lean path's client write buffers, held only while a
// request is served: an idle keep-alive connection holds none (4 KiB each,
// 4 MiB at 1,000 open connections).
var leanWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, leanWriteBuf) }}

// leanReaders are the read buffers of TLS clients on the lean path,
// given back while a connection idles (waitNext).
var leanReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, leanReadBuf) }}

// waitNext waits for the first byte of the client's next request. A TLS
// client with nothing buffered waits without a read buffer (4 KiB each,
// 4 MiB at 1,000 idle connections): the byte read is put back in front.
func (lc *leanClient) waitNext() error {
	if !lc.pooledReads || lc.br.Buffered() > 0 {
		_, err := lc.br.Peek(1)
		return err
	}
	lc.br.Reset(nil)
	leanReaders.Put(lc.br)
	n, err := lc.first.nc.Read(lc.first.b[:])
	lc.br = leanReaders.Get().(*bufio.Reader)
	lc.br.Reset(&lc.first)
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	lc.first.pending = true
	return nil
}

// busy gives lc a write buffer for the request about to be served.
func (lc *leanClient) busy() {
	if lc.bw == nil {
		lc.bw = leanWriters.Get().(*bufio.Writer)
		lc.bw.Reset(lc.nc)
	}
}

// idle returns lc's write buffer between requests; every answer was
// flushed by then (one that was not keeps its buffer).
func (lc *leanClient) idle() {
	if lc.bw != nil && lc.bw.Buffered() == 0 {
		lc.bw.Reset(nil)
		leanWriters.Put(lc.bw)
		lc.bw = nil
	}
}

// readLeanHead returns the head at the start of br (still buffered), nil
// when it does not fit.
func readLeanHead(br *bufio.Reader) ([]byte, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if n := leanHeadEnd(buf); n > 0 {
			return buf[:n], nil
		}
		if len(buf) >= br.Size() {
			return nil, nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// leanRest is the client connection handed to net/http: what the lean
// path buffered, then the connection.
type leanRest struct {
	net.Conn
	br *bufio.Reader
}

func (c *leanRest) Read(p []byte) (int, error) { return c.br.Read(p) }

func (c *leanRest) Unwrap() net.Conn { return c.Conn }

// CloseWrite lets net/http's server half-close before it closes (after a
// 431, say), so that the client reads the answer rather than a reset.
func (c *leanRest) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// leanRequest decides one request as serveRequest does and forwards it;
// false means the client connection is done.
func (p *Proxy) leanRequest(lc *leanClient, h *leanHead) bool {
	start := time.Now()
	c := lc.c
	r := &http.Request{Method: h.method, URL: h.url, Host: h.host, RequestURI: h.target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	w := &leanWriter{bw: lc.bw, close: h.close}
	if !p.admit(p.ctx) {
		p.refuseBusy(c, w, r)
		return lc.refused(h, w)
	}
	defer p.release()
	t, bad := p.requestTarget(c, r)
	if bad != "" {
		p.refuseTarget(c, w, r, bad)
		return lc.refused(h, w)
	}
	req := c.ruleRequest(r, t)
	v := p.cfg.Rules.Evaluate(p.ctx, req)
	e := c.requestEvent(req, v)
	if !v.Allow {
		e.Status = http.StatusForbidden
		p.emit(e)
		writeText(w, http.StatusForbidden, blockedBody+v.DenyMessage)
		return lc.refused(h, w)
	}
	if cl := max(h.contentLength, 0); v.MaxTxBytes > 0 && leanHeadBytes(h)+cl > v.MaxTxBytes {
		e.Verdict, e.Reason, e.Status = event.Deny, "max_tx_bytes", http.StatusRequestEntityTooLarge
		p.emit(e)
		writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"Request body size (%d bytes) exceeds maximum allowed (%d bytes)\n", cl, v.MaxTxBytes))
		return lc.refused(h, w)
	}
	return p.leanForward(lc, h, t, e, start)
}

// leanHeadBytes is the head's size as limitBody counts it.
func leanHeadBytes(h *leanHead) int64 {
	n := len(h.method) + 1 + len(h.url.RequestURI()) + len(" HTTP/1.1\r\n") + 2
	n += len("Host: ") + len(h.host) + 2
	for _, f := range h.fields {
		if !fieldIs(f.name, "Host") {
			n += len(f.name) + 2 + len(f.value) + 2
		}
	}
	return int64(n)
}

// refused ends a request the proxy answered itself: the answer goes out
// and the unread body is dropped, so the connection can go on, or close
// without a reset that could lose the answer.
func (lc *leanClient) refused(h *leanHead, w *leanWriter) bool {
	if !lc.flush() {
		return false
	}
	if h.contentLength > 0 {
		lc.nc.SetReadDeadline(time.Now().Add(lc.t.ClientIdle))
		if _, err := lc.br.Discard(int(h.contentLength)); err != nil {
			return false
		}
	}
	return !h.close
}

// flush sends what was written to the client, within ClientIdle.
func (lc *leanClient) flush() bool {
	if lc.bw.Buffered() == 0 {
		return true
	}
	lc.nc.SetWriteDeadline(time.Now().Add(lc.t.ClientIdle))
	return lc.bw.Flush() == nil
}

// leanWriter is the http.ResponseWriter of the answers the proxy makes
// itself (writeText) on the lean path.
type leanWriter struct {
	bw     *bufio.Writer
	h      http.Header
	close  bool
	status int
}

func (w *leanWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *leanWriter) WriteHeader(s int) {
	if w.status != 0 {
		return
	}
	w.status = s
	w.bw.WriteString("HTTP/1.1 " + strconv.Itoa(s) + " " + http.StatusText(s) + "\r\n")
	w.Header().Write(w.bw)
	if w.close {
		w.bw.WriteString("Connection: close\r\n")
	}
	w.bw.WriteString("\r\n")
}

func (w *leanWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.bw.Write(b)
}
