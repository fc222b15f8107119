package sniff

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxPeek is the most Peek buffers before giving up on a connection as
// [KindOther]. It holds the largest ClientHello crypto/tls accepts (a 64 KiB
// handshake message, in records of 16 KiB, plus their headers; real ones
// are 0.5-2 KiB, post-quantum key shares included) and far more request
// head than real HTTP clients send (nginx refuses header lines over 8 KiB
// by default), while keeping a flood of connections cheap.
const MaxPeek = 65 << 10

// Kind is what the first bytes of a connection look like.
type Kind int

const (
	// KindOther is anything Peek could not show to be TLS or HTTP/1.x. It is
	// the zero value, so a Result from a failed Peek says Other too.
	KindOther Kind = iota
	// KindTLS is a TLS ClientHello that crypto/tls parsed.
	KindTLS
	// KindHTTP is an HTTP/1.x request whose header block net/http parsed.
	KindHTTP
)

func (k Kind) String() string {
	switch k {
	case KindOther:
		return "other"
	case KindTLS:
		return "tls"
	case KindHTTP:
		return "http"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Result is what Peek learned. Fields that do not apply to Kind are zero.
type Result struct {
	Kind Kind

	// SNI is the ClientHello's server_name, "" when the client sent none
	// (clients omit it for IP literals).
	SNI string
	// ALPN lists the protocols the client offered, in its order of
	// preference.
	ALPN []string

	// Method is the HTTP request method, CONNECT included.
	Method string
	// Target is the request-target as sent: origin-form ("/x?y"),
	// absolute-form ("http://h/x", from a client that believes it talks to a
	// proxy) or authority-form ("h:443", for CONNECT).
	Target string
	// Host is the Host header as sent, "" when there is none. For
	// absolute-form targets it may differ from the target's host; comparing
	// them is the caller's business.
	Host string
}

// Peek reads from c until it can classify the connection, for at most
// timeout in all, and returns what it found and a conn that replays every
// byte read (nothing is consumed) followed by the rest of c.
//
// The returned conn is a [*Conn] and is never nil, not even with an error:
// after a timeout (a client waiting for the server to speak first) the
// caller may still forward it. Peek returns an error only when reading
// failed before the bytes could be classified: errors.Is(err,
// os.ErrDeadlineExceeded) for the deadline, io.EOF for a client that closed
// without sending anything, io.ErrUnexpectedEOF for one that closed in the
// middle of a ClientHello or request head; or when c's deadline cannot be
// set or cleared (c is closed). Bytes that prove to be neither TLS nor
// HTTP/1.x are KindOther with a nil error.
//
// A positive timeout becomes c's read deadline, cleared again before Peek
// returns; with timeout <= 0 Peek leaves c's deadline alone. Peek reads
// from c and never writes to it.
func Peek(c net.Conn, timeout time.Duration) (Result, net.Conn, error) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return Result{}, &Conn{Conn: c}, fmt.Errorf("set peek deadline: %w", err)
		}
	}
	r := &recorder{c: c}
	res, err := r.classify()
	if timeout > 0 {
		// Cleared even on error: after a timeout the caller may forward the
		// connection, and the next read must not fail at once.
		if derr := c.SetReadDeadline(time.Time{}); derr != nil && err == nil {
			err = fmt.Errorf("clear peek deadline: %w", derr)
		}
	}
	return res, &Conn{Conn: c, peeked: r.buf}, err
}

// errFull reports that MaxPeek bytes were read without a classification.
var errFull = errors.New("sniff: peek buffer full")

// recorder reads from the client and keeps every byte it read.
type recorder struct {
	c   net.Conn
	buf []byte
	err error // first error from c (or errFull); sticky
}

// classify reads until it can tell the kind of connection.
func (r *recorder) classify() (Result, error) {
	if err := r.need(1); err != nil {
		return Result{}, err
	}
	switch b := r.buf[0]; {
	case b == recordTypeHandshake:
		return r.classifyTLS()
	case isMethodStart(b):
		return r.classifyHTTP()
	}
	return Result{}, nil
}

// need reads until r.buf holds at least n bytes. It reports a read error
// only when it stops it short, so that bytes that arrived together with an
// error are still looked at.
func (r *recorder) need(n int) error {
	for len(r.buf) < n {
		if err := r.fill(); err != nil {
			return r.readError()
		}
	}
	return nil
}

// readError is what Peek returns for r.err. Running out of bytes in the
// middle of a message is io.ErrUnexpectedEOF, like io.ReadFull; the cap is
// not an error at all but the classification Other, which callers handle
// before asking.
func (r *recorder) readError() error {
	err := r.err
	if errors.Is(err, io.EOF) && len(r.buf) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read first bytes: %w", err)
}

// maxEmptyReads bounds how often a broken Reader may return (0, nil) before
// Peek gives up, as bufio does, instead of spinning.
const maxEmptyReads = 100

// fill reads once from the client, appending to r.buf. It returns nil when
// it added bytes, even if the read also failed; the error is kept for the
// next call.
func (r *recorder) fill() error {
	if r.err != nil {
		return r.err
	}
	if len(r.buf) >= MaxPeek {
		r.err = errFull
		return r.err
	}
	if len(r.buf) == cap(r.buf) {
		// Start small (most peeks end within one segment) and double: the
		// buffer ends up as the replay buffer, so it is never pooled.
		grown := make([]byte, len(r.buf), min(max(2*cap(r.buf), 4<<10), MaxPeek))
		copy(grown, r.buf)
		r.buf = grown
	}
	for range maxEmptyReads {
		n, err := r.c.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		if err != nil {
			r.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	r.err = io.ErrNoProgress
	return r.err
}

// full reports whether the peek stopped at MaxPeek.
func (r *recorder) full() bool { return r.err == errFull }
