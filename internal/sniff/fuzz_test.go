package sniff

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzPeekTLS mutates real ClientHellos: Peek must never panic or hang,
// must replay exactly what it was given, and must classify the same bytes
// the same way however they are split across reads.
func FuzzPeekTLS(f *testing.F) {
	// X25519 alone keeps the hellos at about 250 bytes instead of the 1.5
	// KiB a post-quantum key share takes: the fuzzer spends its time
	// minimizing every interesting input, byte by byte.
	small := []tls.CurveID{tls.X25519}
	for _, cfg := range []*tls.Config{
		{ServerName: "example.com", CurvePreferences: small},
		{ServerName: "203.0.113.7", CurvePreferences: small},
		{ServerName: "api.example.com", NextProtos: []string{"h2", "http/1.1"}, CurvePreferences: small},
		{ServerName: "old.example.com", MaxVersion: tls.VersionTLS12},
	} {
		hello := clientHello(f, cfg)
		f.Add(hello, uint16(0))
		f.Add(hello, uint16(7))
		f.Add(hello[:len(hello)/2], uint16(100))
		// The multi-record path, without the 16 KiB a real client needs
		// before it fragments.
		f.Add(refragment(hello, 50), uint16(0))
		f.Add(refragment(hello, 1), uint16(3))
	}
	f.Add(clientHello(f, &tls.Config{ServerName: "pq.example.com"}), uint16(0))
	f.Add([]byte("\x16\x03\x01\x00\x04\x01\x00\xff\xfc"), uint16(3))
	f.Add([]byte("\x16\x03\x01\xff\xff"), uint16(0))
	f.Fuzz(checkPeek)
}

// FuzzPeekHTTP is FuzzPeekTLS for HTTP/1.x request heads.
func FuzzPeekHTTP(f *testing.F) {
	for _, head := range []string{
		"GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
		"GET http://example.com/x HTTP/1.1\r\nHost: other.example\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HEAD / HTTP/1.0\n\n",
		"PROPFIND /dav/ HTTP/1.1\r\nHost: dav.example\r\nDepth: 1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", 300) + "\r\n\r\n",
	} {
		f.Add([]byte(head), uint16(0))
		f.Add([]byte(head), uint16(1))
		f.Add([]byte(head), uint16(5))
	}
	f.Fuzz(checkPeek)
}

// checkPeek peeks at data delivered in reads of at most chunk bytes (0 is
// all at once) and then once more in a single read, and checks that both
// agree and replay data exactly.
func checkPeek(t *testing.T, data []byte, chunk uint16) {
	// A deadline Peek cannot reach: chunkConn ignores it and ends in EOF,
	// so a Peek that blocks is a bug the fuzzer reports as a hang.
	const timeout = time.Minute
	size := int(chunk)
	if size == 0 {
		size = len(data) + 1
	}
	res, pc, err := Peek(&chunkConn{data: data, chunk: size}, timeout)
	if pc == nil {
		t.Fatal("Peek: got a nil conn")
	}
	if err != nil {
		if res.Kind != KindOther {
			t.Fatalf("Peek: got kind %v with error %v, want %v", res.Kind, err, KindOther)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Peek: got error %v, want EOF or unexpected EOF", err)
		}
	}
	switch res.Kind {
	case KindTLS:
		if data[0] != recordTypeHandshake {
			t.Fatalf("Peek: got %v for first byte %#x", res.Kind, data[0])
		}
	case KindHTTP:
		if !bytes.HasPrefix(data, []byte(res.Method+" "+res.Target+" ")) {
			t.Fatalf("Peek: got %v %q %q, not how %q starts", res.Kind, res.Method, res.Target, snippet(data))
		}
	}
	if b := pc.(*Conn).Buffered(); b > MaxPeek {
		t.Fatalf("Peek buffered %d bytes, want at most %d", b, MaxPeek)
	}
	got, rerr := io.ReadAll(pc)
	if rerr != nil {
		t.Fatalf("read replay: %v", rerr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("replay: got %d bytes, want the %d sent", len(got), len(data))
	}

	whole, _, werr := Peek(&chunkConn{data: data, chunk: len(data) + 1}, timeout)
	if !reflect.DeepEqual(whole, res) || (werr == nil) != (err == nil) {
		t.Fatalf("Peek in reads of %d: got %+v, %v; in one read: %+v, %v", chunk, res, err, whole, werr)
	}
}
