package sniff

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// clientHello returns the bytes a crypto/tls client with cfg sends first: a
// real ClientHello, in as many records as its size needs (tcpproxy's
// clientHelloRecord). The handshake is cut off when the client reads.
func clientHello(tb testing.TB, cfg *tls.Config) []byte {
	tb.Helper()
	var rec helloRecorder
	err := tls.Client(&rec, cfg).Handshake()
	if rec.buf.Len() == 0 {
		tb.Fatalf("generate client hello: %v", err)
	}
	return rec.buf.Bytes()
}

// helloRecorder is a conn that keeps what is written to it and fails reads.
type helloRecorder struct{ buf bytes.Buffer }

var errRecorded = errors.New("hello recorded")

func (r *helloRecorder) Read([]byte) (int, error)         { return 0, errRecorded }
func (r *helloRecorder) Write(p []byte) (int, error)      { return r.buf.Write(p) }
func (r *helloRecorder) Close() error                     { return nil }
func (r *helloRecorder) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (r *helloRecorder) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (r *helloRecorder) SetDeadline(time.Time) error      { return nil }
func (r *helloRecorder) SetReadDeadline(time.Time) error  { return nil }
func (r *helloRecorder) SetWriteDeadline(time.Time) error { return nil }

// bigALPN returns n distinct ALPN protocol names of size bytes each: the
// way to make crypto/tls send a ClientHello of any size up to 64 KiB.
func bigALPN(n, size int) []string {
	protos := make([]string, n)
	for i := range protos {
		protos[i] = string(rune('a'+i%26)) + strings.Repeat("x", size-2) + string(rune('a'+i/26%26))
	}
	return protos
}

// records counts the TLS records in b that start where the previous ended.
func records(b []byte) int {
	n := 0
	for len(b) >= 5 {
		b = b[min(len(b), 5+(int(b[3])<<8|int(b[4]))):]
		n++
	}
	return n
}

// refragment re-cuts the single-record ClientHello hello into records of
// at most size bytes of handshake message each, the way a client with a
// larger hello (or a middlebox) splits it.
func refragment(hello []byte, size int) []byte {
	hdr, msg := hello[:3], hello[5:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, hdr...)
		out = append(out, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// chunkConn is a net.Conn that reads data at most chunk bytes at a time,
// then io.EOF; writes are discarded and deadlines ignored. It drives Peek
// without goroutines, for fuzzing and benchmarks.
type chunkConn struct {
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *chunkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *chunkConn) SetDeadline(time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// pipePair returns both ends of a net.Pipe, closed at the end of the test.
// A pipe delivers each Write to Reads without coalescing, so one-byte
// writes reach Peek as one-byte reads.
func pipePair(tb testing.TB) (client, server net.Conn) {
	client, server = net.Pipe()
	tb.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// delivery is a way of sending a client's first bytes.
type delivery struct {
	name  string
	pipe  bool          // net.Pipe instead of loopback TCP
	chunk int           // bytes per Write; 0 is all at once
	delay time.Duration // pause after each Write
}

var deliveries = []delivery{
	{name: "whole"},
	{name: "trickle", pipe: true, chunk: 1},
	{name: "chunks", chunk: 97, delay: time.Millisecond},
}

// send writes data to c as d says, without closing it: Peek must not need
// the client to finish. The returned channel yields the write error.
func send(c net.Conn, data []byte, d delivery) <-chan error {
	done := make(chan error, 1)
	go func() {
		chunk := d.chunk
		if chunk == 0 {
			chunk = len(data)
		}
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := c.Write(data[:n]); err != nil {
				done <- err
				return
			}
			data = data[n:]
			time.Sleep(d.delay)
		}
		done <- nil
	}()
	return done
}

// pair returns a connected client and server for d.
func (d delivery) pair(tb testing.TB) (client, server net.Conn) {
	if d.pipe {
		return pipePair(tb)
	}
	c, s := testutil.TCPPair(tb)
	return c, s
}

// checkReplay reads len(want) bytes from c and compares them with want.
func checkReplay(tb testing.TB, c net.Conn, want []byte) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c, got); err != nil {
		tb.Fatalf("read replay: got %d of %d bytes: %v", n, len(want), err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		tb.Fatalf("replayed bytes differ from byte %d on: got %q, want %q", i, snippet(got[i:]), snippet(want[i:]))
	}
}

func snippet(b []byte) []byte { return b[:min(len(b), 32)] }
