package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// leanExchange is one request forwarded on the lean path.
type leanExchange struct {
	p  *Proxy
	lc *leanClient
	h  *leanHead
	fw *forward
	up *upConn
	// waiting says the request is out and the response head awaited.
	waiting bool
	// bodyRead says the request body was taken from the client.
	bodyRead   bool
	bodyErr    error
	status     int
	sent, down int64
	addr       string
	clientGone bool
}

// leanForward sends an allowed request upstream and its response back,
// and emits e, the request's event, once it is done; false means the
// client connection is done.
func (p *Proxy) leanForward(lc *leanClient, h *leanHead, t target, e event.Event, start time.Time) bool {
	fw := &forward{scheme: lc.c.scheme, hostport: t.hostport(), dialIP: lc.c.dialIP}
	x := &leanExchange{p: p, lc: lc, h: h, fw: fw}
	keep := false
	if res, err := x.roundTrip(t.host); err != nil {
		keep = x.fail(err)
	} else {
		keep = x.relay(res)
	}
	e.Status, e.BytesUp, e.BytesDown, e.DurationMS = x.status, x.sent, x.down, sinceMS(start)
	e.Upstream = x.addr
	if x.clientGone && fw.err == "" {
		e.Reason = "response cut short: the client went away"
	}
	if fw.err != "" {
		e.Reason = "upstream error: " + fw.err
	}
	if fw.local != nil {
		markLocal(&e, fw.local)
	}
	p.emit(e)
	return keep
}

// leanIdempotent says a request may be sent again (RFC 9110, 9.2.2).
func leanIdempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// roundTrip sends the request and reads the response head. A pooled
// connection the origin had closed meanwhile is replaced, and the request
// sent again, only when it is idempotent and has no body.
func (x *leanExchange) roundTrip(host string) (*leanHead, error) {
	pool := x.p.lean
	key := leanKey(x.fw.scheme, x.fw.hostport)
	replayable := x.h.contentLength <= 0 && leanIdempotent(x.h.method)
	for {
		up := pool.take(key)
		if up == nil {
			ctx, cancel := context.WithTimeout(x.p.ctx, dialTimeout+leanTLSTimeout)
			var err error
			up, err = pool.dial(ctx, x.fw, host)
			cancel()
			if err != nil {
				return nil, err
			}
		}
		x.up, x.addr = up, up.addr
		err := x.send()
		var res *leanHead
		if err == nil {
			res, err = x.readHead()
		}
		if err == nil {
			return res, nil
		}
		up.close()
		x.up = nil
		if up.reused && replayable && x.bodyErr == nil && leanStale(err) {
			continue
		}
		return nil, err
	}
}

var errClientGone = errors.New("the client went away")

// leanStale says err is what a kept-alive connection the origin closed
// gives before any byte of a response.
func leanStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// send writes the head, with the hop-by-hop headers left out, and the
// body.
func (x *leanExchange) send() error {
	up, h := x.up, x.h
	up.nc.SetWriteDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
	bw := up.bw
	bw.WriteString(h.method)
	bw.WriteByte(' ')
	bw.WriteString(h.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(h.host)
	bw.WriteString("\r\n")
	for _, f := range h.fields {
		if leanHopRequest(f.name) {
			continue
		}
		writeField(bw, f)
	}
	bw.WriteString("\r\n")
	if h.contentLength > 0 && !x.bodyRead {
		x.bodyRead = true
		if err := x.sendBody(); err != nil {
			return err
		}
		up.nc.SetWriteDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
	}
	return bw.Flush()
}

// sendBody copies the request body upstream as it comes: what the client
// sent so far is flushed whenever the next read may wait, and each read
// waits up to ClientIdle.
func (x *leanExchange) sendBody() error {
	lc, bw := x.lc, x.up.bw
	for left := x.h.contentLength; left > 0; {
		if lc.br.Buffered() == 0 {
			x.up.nc.SetWriteDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		lc.nc.SetReadDeadline(time.Now().Add(x.p.cfg.Timeouts.ClientIdle))
		b, err := lc.br.Peek(int(min(left, int64(lc.br.Size()), int64(max(lc.br.Buffered(), 1)))))
		if len(b) > 0 {
			if bw.Available() < len(b) {
				x.up.nc.SetWriteDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
			}
			bw.Write(b)
			lc.br.Discard(len(b))
			x.sent += int64(len(b))
			left -= int64(len(b))
		}
		if err != nil && left > 0 {
			x.bodyErr = err
			return err
		}
	}
	return nil
}

func writeField(bw *bufio.Writer, f leanField) {
	bw.WriteString(f.name)
	bw.WriteString(": ")
	bw.WriteString(f.value)
	bw.WriteString("\r\n")
}

// fieldIs compares a header name, whatever its case.
func fieldIs(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		a, b := name[i], want[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// leanHop are the headers ReverseProxy leaves out both ways.
var leanHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// leanHopRequest says a request header goes no further: hop-by-hop, Host
// (written first), and the forwarding headers ReverseProxy drops.
func leanHopRequest(name string) bool {
	for _, h := range leanHop {
		if fieldIs(name, h) {
			return true
		}
	}
	for _, h := range []string{"Host", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if fieldIs(name, h) {
			return true
		}
	}
	return false
}

// readHead reads the response head, passing 1xx heads on to the client.
func (x *leanExchange) readHead() (*leanHead, error) {
	up := x.up
	x.waiting = true
	for {
		up.nc.SetReadDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
		x.lc.watch.arm(up.nc)
		head, err := readLeanHead(up.br)
		if x.lc.watch.disarm() {
			x.clientGone = true
			return nil, errClientGone
		}
		if err == nil && head == nil {
			if err = up.growHead(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && up.br.Buffered() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		res, ok := parseLeanResponse(head)
		up.br.Discard(len(head))
		if !ok {
			return nil, errors.New("malformed HTTP response head")
		}
		if res.status == http.StatusSwitchingProtocols {
			return nil, errors.New("101 Switching Protocols to a request that asked for no upgrade")
		}
		if res.status/100 != 1 {
			x.waiting = false
			return &res, nil
		}
		x.writeHead(&res, false)
		if !x.lc.flush() {
			return nil, errors.New("client went away")
		}
	}
}

// growHead makes room for a response head larger than the reader, four
// times as much each time up to maxHeaderBytes (the bound of the existing
// path). The buffered bytes are read again first.
func (u *upConn) growHead() error {
	if u.br.Size() >= maxHeaderBytes {
		return fmt.Errorf("server response headers exceeded %d bytes; aborted", maxHeaderBytes)
	}
	buffered, _ := u.br.Peek(u.br.Buffered())
	size := min(u.br.Size()*4, maxHeaderBytes)
	u.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), u.nc), size)
	return nil
}

// writeHead writes a response head to the client, hop-by-hop headers
// left out; chunked says the body goes chunked.
func (x *leanExchange) writeHead(res *leanHead, chunked bool) {
	bw := x.lc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(res.target)
	bw.WriteString("\r\n")
	for _, f := range res.fields {
		if leanHopResponse(res, f.name) && !(chunked && res.chunked && fieldIs(f.name, "Trailer")) {
			continue
		}
		writeField(bw, f)
	}
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if x.h.close && res.status/100 != 1 {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

func leanHopResponse(res *leanHead, name string) bool {
	for _, h := range leanHop {
		if fieldIs(name, h) {
			return true
		}
	}
	for _, h := range res.hop {
		if fieldIs(name, h) {
			return true
		}
	}
	return false
}

// fail answers a request whose upstream failed before a response head,
// as the existing path's ErrorHandler does.
func (x *leanExchange) fail(err error) bool {
	if x.clientGone {
		return false
	}
	if x.bodyErr != nil {
		x.fw.err = "request body cut short: " + err.Error()
		return false
	}
	w := &leanWriter{bw: x.lc.bw, close: x.h.close}
	if x.waiting && errors.Is(err, os.ErrDeadlineExceeded) {
		msg := fmt.Sprintf("no response from upstream for %v", x.p.cfg.Timeouts.UpstreamIdle)
		x.fw.err = msg
		writeText(w, http.StatusGatewayTimeout, "Upstream error: "+msg+"\n")
	} else {
		x.fw.err = err.Error()
		if !refuseLocal(w, x.fw, err) {
			writeText(w, http.StatusBadGateway, "Upstream error: "+err.Error()+"\n")
		}
	}
	x.status = w.status
	if x.bodyRead {
		return x.lc.flush() && !x.h.close
	}
	return x.lc.refused(x.h, w)
}

// relay sends the response on: its head, then its body as it comes. The
// upstream connection goes back to the pool when the response ended
// cleanly and the origin keeps it.
func (x *leanExchange) relay(res *leanHead) bool {
	x.status = res.status
	noBody := leanNoBody(res.status, x.h.method)
	untilClose := !noBody && !res.chunked && res.contentLength < 0
	x.writeHead(res, !noBody && (res.chunked || untilClose))
	ok := true
	switch {
	case noBody:
	case res.chunked:
		ok = x.pump(httputil.NewChunkedReader(x.up.br), -1, true) && x.trailers()
	case untilClose:
		ok = x.pump(x.up.br, -1, true) && x.endChunks()
	default:
		ok = x.pump(x.up.br, res.contentLength, false)
	}
	if !ok {
		x.up.close()
		return false
	}
	// The upstream is done with before the client has the end: its next
	// request may already be on its way.
	if res.close || res.minor != 1 || untilClose {
		x.up.noReuse = true
	}
	x.p.lean.put(x.up)
	if !x.lc.flush() {
		x.clientGone = true
		return false
	}
	return !x.h.close
}

// pump copies a response body (left bytes, or to its end when -1) to the
// client, chunked when chunk is set, flushing what it wrote whenever the
// next read may wait for the upstream.
func (x *leanExchange) pump(src io.Reader, left int64, chunk bool) bool {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	idle := x.p.cfg.Timeouts.UpstreamIdle
	for left != 0 {
		if x.up.br.Buffered() == 0 && !x.lc.flush() {
			x.clientGone = true
			return false
		}
		n := len(buf)
		if left > 0 && int64(n) > left {
			n = int(left)
		}
		x.up.nc.SetReadDeadline(time.Now().Add(idle))
		wait := x.up.br.Buffered() == 0
		if wait {
			x.lc.watch.arm(x.up.nc)
		}
		k, err := src.Read(buf[:n])
		if wait && x.lc.watch.disarm() {
			x.clientGone = true
			return false
		}
		if k > 0 && !x.write(buf[:k], chunk) {
			return false
		}
		if left > 0 {
			left -= int64(k)
		}
		if err == io.EOF && left < 0 {
			return true
		}
		if err != nil && left != 0 {
			x.cutBy(err)
			return false
		}
	}
	return true
}

// write sends body bytes to the client, as a chunk when chunk is set.
func (x *leanExchange) write(p []byte, chunk bool) bool {
	bw := x.lc.bw
	if bw.Available() < len(p)+20 {
		x.lc.nc.SetWriteDeadline(time.Now().Add(x.p.cfg.Timeouts.ClientIdle))
	}
	if chunk {
		var hdr [20]byte
		bw.Write(append(strconv.AppendUint(hdr[:0], uint64(len(p)), 16), '\r', '\n'))
	}
	_, err := bw.Write(p)
	if chunk && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	x.down += int64(len(p))
	if err != nil {
		x.clientGone = true
		return false
	}
	return true
}

// cutBy records why the response body ended early.
func (x *leanExchange) cutBy(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		x.fw.err = fmt.Sprintf("response body cut short: nothing from upstream for %v", x.p.cfg.Timeouts.UpstreamIdle)
		return
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	x.fw.err = "response body cut short: " + err.Error()
}

// endChunks ends a chunked body without trailers.
func (x *leanExchange) endChunks() bool {
	_, err := x.lc.bw.WriteString("0\r\n\r\n")
	return err == nil
}

// maxTrailerBytes bounds a chunked response's trailer section.
const maxTrailerBytes = 64 << 10

// trailers passes a chunked response's trailer fields on, and ends it.
func (x *leanExchange) trailers() bool {
	bw := x.lc.bw
	bw.WriteString("0\r\n")
	total := 0
	for {
		x.up.nc.SetReadDeadline(time.Now().Add(x.p.cfg.Timeouts.UpstreamIdle))
		line, err := x.up.br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > maxTrailerBytes || len(line) < 2 || line[len(line)-2] != '\r' {
			if err == nil {
				err = errors.New("malformed trailer")
			}
			x.cutBy(err)
			return false
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			_, err := bw.WriteString("\r\n")
			return err == nil
		}
		f, ok := parseLeanField(line, string(line), false)
		if !ok {
			x.cutBy(errors.New("malformed trailer"))
			return false
		}
		writeField(bw, f)
	}
}
