package sniff

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"time"
)

// recordTypeHandshake is the first byte of a TLS record carrying handshake
// messages, and so of every ClientHello (RFC 8446, section 5.1).
const recordTypeHandshake = 0x16

// errHelloSeen aborts the handshake once the ClientHello has been captured.
var errHelloSeen = errors.New("sniff: client hello seen")

// helloConfig makes crypto/tls parse the ClientHello and stop: the server
// side calls GetConfigForClient with the parsed hello before it writes
// anything or needs a certificate. One Config serves every peek because the
// callback keeps what it learns in the conn it is given.
var helloConfig = &tls.Config{
	GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		hc := hello.Conn.(*helloConn)
		hc.seen = true
		hc.res = Result{
			Kind: KindTLS,
			SNI:  hello.ServerName,
			ALPN: slices.Clone(hello.SupportedProtos),
		}
		return nil, errHelloSeen
	},
}

// classifyTLS lets crypto/tls read the ClientHello, however many records
// it spans, from the bytes recorded so far and then from the client.
func (r *recorder) classifyTLS() (Result, error) {
	// Every TLS version puts major version 3 in the record header; checking
	// it here classifies "\x16" plus garbage without waiting for the five
	// bytes crypto/tls reads before it looks.
	if err := r.need(2); err != nil {
		return Result{}, err
	}
	if r.buf[1] != 3 {
		return Result{}, nil
	}
	hc := &helloConn{r: r}
	// Handshake, not HandshakeContext: with no context crypto/tls starts no
	// goroutine, and the deadline already bounds the reads.
	_ = tls.Server(hc, helloConfig).Handshake()
	switch {
	case hc.seen:
		return hc.res, nil
	case r.full():
		return Result{}, nil
	case hc.short:
		// The hello was cut short by the client, not refused by crypto/tls.
		return Result{}, r.readError()
	}
	return Result{}, nil
}

// helloConn is the read-only conn crypto/tls parses the ClientHello from:
// it replays the recorded bytes, then records more from the client. Writes
// (the alert sent on abort) are discarded: the client must see nothing.
type helloConn struct {
	r     *recorder
	off   int  // next recorded byte to hand to crypto/tls
	short bool // crypto/tls asked for more bytes than the client gave
	seen  bool
	res   Result
}

func (hc *helloConn) Read(p []byte) (int, error) {
	if hc.off == len(hc.r.buf) {
		if err := hc.r.fill(); err != nil {
			hc.short = true
			return 0, err
		}
	}
	n := copy(p, hc.r.buf[hc.off:])
	hc.off += n
	return n, nil
}

// Write discards: the alert crypto/tls sends when the peek aborts it must
// never reach the client, whose real handshake comes later.
func (hc *helloConn) Write(p []byte) (int, error) { return len(p), nil }
func (hc *helloConn) Close() error                { return nil }
func (hc *helloConn) LocalAddr() net.Addr         { return hc.r.c.LocalAddr() }
func (hc *helloConn) RemoteAddr() net.Addr        { return hc.r.c.RemoteAddr() }

// The deadline Peek set is on the client's conn, which is where the reads
// block; crypto/tls sets deadlines only when its own caller asks it to.
func (hc *helloConn) SetDeadline(time.Time) error      { return nil }
func (hc *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (hc *helloConn) SetWriteDeadline(time.Time) error { return nil }
