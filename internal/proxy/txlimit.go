package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// A rule's max_tx_bytes counts everything the client sends after the
// decision: the request head and body (httpjail semantics), then, when the
// origin switches protocols (101: WebSocket, h2c...), every byte the client
// sends through the upgraded connection; for a connection decided once
// (--tcp, --no-mitm), every byte of it. Once the limit is reached a
// request body just ends there, while an upgraded or spliced connection is
// cut: a stream cannot be shortened without breaking it, and ending it
// quietly would let the client believe everything went through.

// errTxLimit is why an upgraded connection was cut.
var errTxLimit = errors.New("max_tx_bytes reached")

// txBudget is what one decision still lets the client send.
type txBudget struct {
	max  int64
	left atomic.Int64
	// upgraded counts what went through the upgraded connection.
	upgraded atomic.Int64
	cut      atomic.Bool
}

// take returns how many of n bytes still fit (all of them without a limit).
func (b *txBudget) take(n int) int {
	if b.max <= 0 {
		return n
	}
	for {
		left := b.left.Load()
		k := int64(n)
		if k > left {
			k = left
		}
		if b.left.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// reason is the event's reason when the limit cut a connection, else "".
func (b *txBudget) reason() string {
	if b == nil || !b.cut.Load() {
		return ""
	}
	return fmt.Sprintf("max_tx_bytes: the connection was cut at the %d-byte limit", b.max)
}

// limitBody applies a rule's max_tx_bytes (max > 0; max <= 0 only counts):
// the request line, headers and body together may not exceed max. A
// declared length over the limit is refused with 413 before upstream is
// contacted (nil is returned); otherwise the body is cut at the limit and
// the budget left goes on to an upgraded connection (upgraded).
func limitBody(w http.ResponseWriter, r *http.Request, max int64) *txBudget {
	b := &txBudget{max: max}
	if max <= 0 {
		return b
	}
	head := int64(len(r.Method) + 1 + len(r.URL.RequestURI()) + len(" HTTP/1.1\r\n") + 2)
	head += int64(len("Host: ") + len(r.Host) + 2)
	for k, vs := range r.Header {
		for _, v := range vs {
			head += int64(len(k) + 2 + len(v) + 2)
		}
	}
	if r.ContentLength >= 0 && head+r.ContentLength > max {
		writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"Request body size (%d bytes) exceeds maximum allowed (%d bytes)\n", r.ContentLength, max))
		return nil
	}
	room := max - head
	if room < 0 {
		room = 0
	}
	b.left.Store(room)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{rc: r.Body, budget: b}
	}
	return b
}

// limitedBody ends the body cleanly at the limit: upstream sees a complete,
// shorter body (a chunked request just ends early).
type limitedBody struct {
	rc     io.ReadCloser
	budget *txBudget
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.budget.left.Load() <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.budget.left.Load() {
		p = p[:b.budget.left.Load()]
	}
	n, err := b.rc.Read(p)
	b.budget.take(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// wrapUpgraded wraps the upstream end of a switched-protocols connection
// (ReverseProxy writes the client's bytes into it) so they count against
// the budget, and the connection is cut at the limit.
func (b *txBudget) wrapUpgraded(up io.ReadWriteCloser) io.ReadWriteCloser {
	return &upgradedConn{ReadWriteCloser: up, budget: b}
}

type upgradedConn struct {
	io.ReadWriteCloser
	budget *txBudget
}

func (c *upgradedConn) Write(p []byte) (int, error) {
	k := c.budget.take(len(p))
	n, err := c.ReadWriteCloser.Write(p[:k])
	c.budget.upgraded.Add(int64(n))
	if err == nil && k < len(p) {
		c.budget.cut.Store(true)
		err = errTxLimit
	}
	return n, err
}

// CloseWrite passes the client's half-close on, as ReverseProxy does for
// an upstream that can.
func (c *upgradedConn) CloseWrite() error {
	if cw, ok := c.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// copyLimit copies client to up, at most max bytes when max > 0. A client
// that sends more is cut: both connections are reset and closed.
func copyLimit(up, client net.Conn, max int64) (sent int64, cut bool) {
	var err error
	if max <= 0 {
		if sent, err = io.Copy(up, client); brokenCopy(err) {
			reset(client) // a reset on one side resets the other
			reset(up)
		}
		return sent, false
	}
	lr := &io.LimitedReader{R: client, N: max}
	if sent, err = io.Copy(up, lr); brokenCopy(err) {
		reset(client)
		reset(up)
	}
	if lr.N > 0 {
		return sent, false
	}
	// At the limit: one more byte means over it.
	var one [1]byte
	if n, _ := client.Read(one[:]); n == 0 {
		return sent, false
	}
	reset(client)
	reset(up)
	return sent, true
}
