package sniff

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// peekTimeout is long enough never to be reached by a test that expects a
// classification: reaching it means Peek waited for bytes it did not need.
const peekTimeout = 10 * time.Second

func TestPeekTLS(t *testing.T) {
	tests := []struct {
		name    string
		cfg     *tls.Config
		frag    int // re-cut into records of this many bytes
		want    Result
		minRecs int
	}{
		{
			name: "sni",
			cfg:  &tls.Config{ServerName: "example.com"},
			want: Result{Kind: KindTLS, SNI: "example.com"},
		},
		{
			// Clients send no SNI for an IP literal.
			name: "ip literal",
			cfg:  &tls.Config{ServerName: "203.0.113.7"},
			want: Result{Kind: KindTLS},
		},
		{
			name: "alpn",
			cfg:  &tls.Config{ServerName: "api.example.com", NextProtos: []string{"h2", "http/1.1"}},
			want: Result{Kind: KindTLS, SNI: "api.example.com", ALPN: []string{"h2", "http/1.1"}},
		},
		{
			name: "tls12 only",
			cfg:  &tls.Config{ServerName: "old.example.com", MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
			want: Result{Kind: KindTLS, SNI: "old.example.com", ALPN: []string{"http/1.1"}},
		},
		{
			// A hello cut into one-byte records is still a hello (RFC
			// 8446, section 5.1), if a perverse one.
			name:    "one byte records",
			cfg:     &tls.Config{ServerName: "frag.example.com", NextProtos: []string{"h2"}},
			frag:    1,
			want:    Result{Kind: KindTLS, SNI: "frag.example.com", ALPN: []string{"h2"}},
			minRecs: 100,
		},
		{
			// About 30 KiB of ALPN: crypto/tls fragments the hello over
			// two records, and the reader must follow.
			name:    "large over records",
			cfg:     &tls.Config{ServerName: "big.example.com", NextProtos: bigALPN(150, 200)},
			want:    Result{Kind: KindTLS, SNI: "big.example.com", ALPN: bigALPN(150, 200)},
			minRecs: 2,
		},
		{
			// Close to the 64 KiB crypto/tls allows for the whole hello,
			// in four records.
			name:    "largest",
			cfg:     &tls.Config{ServerName: "huge.example.com", NextProtos: bigALPN(240, 255)},
			want:    Result{Kind: KindTLS, SNI: "huge.example.com", ALPN: bigALPN(240, 255)},
			minRecs: 4,
		},
	}
	for _, tt := range tests {
		hello := clientHello(t, tt.cfg)
		if tt.frag > 0 {
			hello = refragment(hello, tt.frag)
		}
		if got := records(hello); got < max(tt.minRecs, 1) {
			t.Fatalf("%s: hello spans %d records, want at least %d", tt.name, got, tt.minRecs)
		}
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				testPeek(t, d, hello, tt.want)
			})
		}
	}
}

// httpHeads are request heads Peek must recognise, with what it reports.
var httpHeads = []struct {
	name string
	head string // request head, possibly with the start of a body
	want Result
}{
	{
		name: "origin form",
		head: "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "/x?y=1", Host: "example.com"},
	},
	{
		// A client that believes it talks to a proxy; the Host header
		// is reported as sent even when it names another host.
		name: "absolute form",
		head: "GET http://example.com/x HTTP/1.1\r\nHost: other.example\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "http://example.com/x", Host: "other.example"},
	},
	{
		name: "absolute form without host header",
		head: "GET http://example.com:8080/ HTTP/1.1\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "http://example.com:8080/"},
	},
	{
		name: "connect",
		head: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Connection: Keep-Alive\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "CONNECT", Target: "example.com:443", Host: "example.com:443"},
	},
	{
		// The body is not awaited: the head is enough.
		name: "post with partial body",
		head: "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\nfirst bytes of the body",
		want: Result{Kind: KindHTTP, Method: "POST", Target: "/upload", Host: "example.com"},
	},
	{
		name: "expect continue",
		head: "PUT /f HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "PUT", Target: "/f", Host: "example.com"},
	},
	{
		name: "http 1.0 without host",
		head: "HEAD / HTTP/1.0\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "HEAD", Target: "/"},
	},
	{
		name: "bare lf",
		head: "DELETE /item/7 HTTP/1.1\nhost: Example.COM\n\n",
		want: Result{Kind: KindHTTP, Method: "DELETE", Target: "/item/7", Host: "Example.COM"},
	},
	{
		name: "webdav",
		head: "PROPFIND /dav/ HTTP/1.1\r\nHost: dav.example\r\nDepth: 1\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "PROPFIND", Target: "/dav/", Host: "dav.example"},
	},
	{
		name: "method with hyphen",
		head: "VERSION-CONTROL /r HTTP/1.1\r\nHost: svn.example\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "VERSION-CONTROL", Target: "/r", Host: "svn.example"},
	},
	{
		name: "options asterisk",
		head: "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "OPTIONS", Target: "*", Host: "example.com"},
	},
	{
		name: "websocket upgrade",
		head: "GET /ws HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "/ws", Host: "ws.example"},
	},
	{
		name: "many headers",
		head: "GET / HTTP/1.1\r\nHost: example.com\r\n" + strings.Repeat("a: b\r\n", 10000) + "\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "/", Host: "example.com"},
	},
	{
		// Long, but within MaxPeek.
		name: "long headers",
		head: "GET / HTTP/1.1\r\nHost: example.com\r\nCookie: " + strings.Repeat("c", 40<<10) + "\r\n\r\n",
		want: Result{Kind: KindHTTP, Method: "GET", Target: "/", Host: "example.com"},
	},
}

func TestPeekHTTP(t *testing.T) {
	for _, tt := range httpHeads {
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				testPeek(t, d, []byte(tt.head), tt.want)
			})
		}
	}
}

// TestPeekOther checks that bytes that are neither TLS nor HTTP/1.x are
// Other as soon as they prove it: the client never closes, so a Peek that
// waited for more would fail with a timeout instead.
func TestPeekOther(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"binary", "\x00\x01\x02\x03"},
		{"lower case", "hello there\r\n"},
		{"ssh banner", "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"},
		{"smtp from client", "HELO mail.example.com\r\n"},
		{"h2 prior knowledge", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"http 0.9", "GET /\r\n"},
		{"http 2 version", "GET / HTTP/2\r\n\r\n"},
		{"empty target", "GET  HTTP/1.1\r\n\r\n"},
		{"lower case method", "get / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"method too long", strings.Repeat("A", maxMethod+1) + " / HTTP/1.1\r\n\r\n"},
		{"control in target", "GET /a\x01b HTTP/1.1\r\n\r\n"},
		{"space after version", "GET / HTTP/1.1 \r\n\r\n"},
		{"two host headers", "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"},
		{"bad header line", "GET / HTTP/1.1\r\nthis is no header\r\n\r\n"},
		{"folded header", "GET / HTTP/1.1\r\n Host: example.com\r\n\r\n"},
		{"bad content length", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: x\r\n\r\n"},
		{"tls bad version", "\x16\x01\x00\x00\x05hello"},
		{"tls server hello", "\x16\x03\x03\x00\x06\x02\x00\x00\x02\x03\x03"},
		{"tls alert record", "\x15\x03\x03\x00\x02\x02\x28"},
		{"tls oversized record", "\x16\x03\x01\xff\xff"},
		{"tls hello too long", "\x16\x03\x01\x00\x04\x01\x01\x00\x01"},
		{"tls garbage hello", "\x16\x03\x01\x00\x08\x01\x00\x00\x04\xde\xad\xbe\xef"},
		{"sslv2 hello", "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10"},
		{"sni with trailing dot", string(bytes.Replace(clientHello(t, &tls.Config{ServerName: "example.com"}), []byte("example.com"), []byte("example.co."), 1))},
	}
	for _, tt := range tests {
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				testPeek(t, d, []byte(tt.data), Result{Kind: KindOther})
			})
		}
	}
}

// testPeek sends data as d says, without closing, and checks that Peek
// returns want and a conn that replays data and then what follows it.
func testPeek(t *testing.T, d delivery, data []byte, want Result) {
	client, server := d.pair(t)
	sent := send(client, data, d)
	res, pc, err := Peek(server, peekTimeout)
	if err != nil {
		t.Fatalf("Peek: got error %v, want %v", err, want)
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("Peek: got %+v, want %+v", summary(res), summary(want))
	}
	if b := pc.(*Conn).Buffered(); b > MaxPeek || b > len(data) {
		t.Fatalf("Peek buffered %d bytes, want at most min(MaxPeek, %d)", b, len(data))
	}
	checkReplay(t, pc, data)
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	checkSilent(t, client)
	// The replay ends where the client's next bytes start.
	tail := []byte("and then")
	sent = send(client, tail, delivery{})
	checkReplay(t, pc, tail)
	if err := <-sent; err != nil {
		t.Fatalf("send tail: %v", err)
	}
}

// checkSilent checks that nothing reached the client: not even the alert
// crypto/tls sends when the peek aborts its handshake.
func checkSilent(t *testing.T, client net.Conn) {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	defer client.SetReadDeadline(time.Time{})
	if n, err := client.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read: got %d bytes, %v, want nothing until the deadline", n, err)
	}
}

// summary shortens a Result whose ALPN list is too long to read in a
// failure message.
func summary(r Result) Result {
	if len(r.ALPN) > 4 {
		r.ALPN = append(r.ALPN[:2:2], "…", r.ALPN[len(r.ALPN)-1])
	}
	return r
}

// TestPeekReadErrors checks the errors: a client that closes or goes
// silent before its first bytes can be classified.
func TestPeekReadErrors(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "example.com"})
	tests := []struct {
		name    string
		data    []byte
		close   bool
		wantErr error
	}{
		{"closed without a byte", nil, true, io.EOF},
		{"closed in the record header", hello[:3], true, io.ErrUnexpectedEOF},
		{"closed in the hello", hello[:len(hello)-1], true, io.ErrUnexpectedEOF},
		{"closed in the method", []byte("GE"), true, io.ErrUnexpectedEOF},
		{"closed in the headers", []byte("GET / HTTP/1.1\r\nHost: a\r\n"), true, io.ErrUnexpectedEOF},
		{"silent", nil, false, os.ErrDeadlineExceeded},
		{"silent in the hello", hello[:len(hello)/2], false, os.ErrDeadlineExceeded},
		{"silent in the headers", []byte("GET / HTTP/1.1\r\nHost: a\r\n"), false, os.ErrDeadlineExceeded},
	}
	const timeout = 200 * time.Millisecond
	for _, tt := range tests {
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				client, server := d.pair(t)
				sent := send(client, tt.data, d)
				if tt.close {
					go func() {
						<-sent
						client.Close()
					}()
				}
				start := time.Now()
				res, pc, err := Peek(server, timeout)
				elapsed := time.Since(start)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Peek: got error %v, want %v", err, tt.wantErr)
				}
				if res.Kind != KindOther {
					t.Errorf("Peek: got kind %v with the error, want %v", res.Kind, KindOther)
				}
				if pc == nil {
					t.Fatal("Peek: got a nil conn with the error, want one that replays")
				}
				if errors.Is(tt.wantErr, os.ErrDeadlineExceeded) && (elapsed < timeout || elapsed > timeout+time.Second) {
					t.Errorf("Peek returned after %v, want about %v", elapsed, timeout)
				}
				if tt.close && elapsed > time.Second {
					t.Errorf("Peek returned after %v, want at once on close", elapsed)
				}
				if got := pc.(*Conn).Buffered(); got != len(tt.data) {
					t.Errorf("Peek kept %d bytes, want %d", got, len(tt.data))
				}
				if !tt.close {
					// The deadline is cleared: the caller may still forward
					// a client that waited for the server to speak first.
					time.Sleep(timeout / 2)
					tail := []byte("SSH-2.0-late\r\n")
					sent := send(client, tail, delivery{})
					checkReplay(t, pc, append(tt.data[:len(tt.data):len(tt.data)], tail...))
					<-sent
				}
			})
		}
	}
}

// TestPeekClearsDeadline checks that a classified conn has no read
// deadline left: a client may think long before its next bytes.
func TestPeekClearsDeadline(t *testing.T) {
	client, server := testutil.TCPPair(t)
	const timeout = 100 * time.Millisecond
	head := "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	sent := send(client, []byte(head), delivery{})
	res, pc, err := Peek(server, timeout)
	if err != nil || res.Kind != KindHTTP {
		t.Fatalf("Peek: got %v, %v, want %v, nil", res.Kind, err, KindHTTP)
	}
	<-sent
	time.Sleep(3 * timeout)
	sent = send(client, []byte("GET /2 HTTP/1.1\r\n\r\n"), delivery{})
	checkReplay(t, pc, []byte(head+"GET /2 HTTP/1.1\r\n\r\n"))
	<-sent
}

// TestPeekNoGoroutineLeak checks that a silent client leaves nothing
// behind once Peek has timed out: Peek starts no goroutines, and crypto/tls
// must not start one either.
func TestPeekNoGoroutineLeak(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "example.com"})
	for _, data := range [][]byte{nil, hello[:len(hello)/2], []byte("GET / HTTP/1.1\r\n")} {
		client, server := testutil.TCPPair(t)
		if _, err := client.Write(data); err != nil {
			t.Fatalf("write: %v", err)
		}
		before := runtime.NumGoroutine()
		_, pc, err := Peek(server, 50*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Peek: got error %v, want %v", err, os.ErrDeadlineExceeded)
		}
		pc.Close()
		client.Close()
		if got := testutil.WaitGoroutines(before, 2*time.Second); got > before {
			t.Fatalf("goroutines after Peek of %q: got %d, want %d", snippet(data), got, before)
		}
	}
}

// TestPeekBombs sends endless input of each shape a hostile client might
// choose: Peek must stop at MaxPeek with Other, in bounded memory.
func TestPeekBombs(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		repeat string
	}{
		{"many headers", "GET / HTTP/1.1\r\n", "X-Bomb: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n"},
		{"tiny headers", "GET / HTTP/1.1\r\n", "a:\r\n"},
		{"one endless header", "GET / HTTP/1.1\r\nX-Bomb: ", "b"},
		{"endless target", "GET /", "t"},
		// Handshake fragments of a hello that claims 64 KiB: crypto/tls
		// buffers them until MaxPeek stops it.
		{"endless hello fragments", "\x16\x03\x01\x00\x04\x01\x00\xff\xfc", "\x16\x03\x01\x00\x10" + strings.Repeat("\x00", 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := testutil.TCPPair(t)
			chunk := []byte(tt.prefix + strings.Repeat(tt.repeat, (1<<20)/len(tt.repeat)))
			body := chunk[len(tt.prefix):]
			done := make(chan struct{})
			go func() {
				defer close(done)
				// 16 MiB, or until the test closes the conn.
				for i, b := 0, chunk; i < 16; i, b = i+1, body {
					if _, err := client.Write(b); err != nil {
						return
					}
				}
			}()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, pc, err := Peek(server, peekTimeout)
			runtime.ReadMemStats(&after)
			server.Close()
			<-done
			if err != nil || res.Kind != KindOther {
				t.Fatalf("Peek: got %v, %v, want %v, nil", res.Kind, err, KindOther)
			}
			if got := pc.(*Conn).Buffered(); got != MaxPeek {
				t.Errorf("Peek buffered %d bytes, want MaxPeek (%d)", got, MaxPeek)
			}
			// The replay buffer with its doublings (about 190 KiB) and
			// what crypto/tls allocated along the way, not the 16 MiB
			// sent.
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Errorf("Peek allocated %d bytes, want at most 1 MiB", got)
			}
		})
	}
}

// TestPeekThenServe checks that what Peek returns is the connection as the
// client sent it: a real TLS handshake and a real HTTP request complete
// over it.
func TestPeekThenServe(t *testing.T) {
	t.Run("tls", func(t *testing.T) {
		cert, roots := selfSigned(t, "example.test")
		client, server := testutil.TCPPair(t)
		cc := tls.Client(client, &tls.Config{ServerName: "example.test", RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		done := make(chan error, 1)
		go func() { done <- cc.Handshake() }()
		res, pc, err := Peek(server, peekTimeout)
		if err != nil || res.SNI != "example.test" {
			t.Fatalf("Peek: got %+v, %v, want SNI example.test", res, err)
		}
		sc := tls.Server(pc, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		if err := sc.Handshake(); err != nil {
			t.Fatalf("server handshake over the peeked conn: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("client handshake: %v", err)
		}
		if got := cc.ConnectionState().NegotiatedProtocol; got != "h2" {
			t.Errorf("negotiated protocol: got %q, want %q", got, "h2")
		}
	})
	t.Run("http", func(t *testing.T) {
		client, server := testutil.TCPPair(t)
		body := strings.Repeat("body", 1000)
		req, _ := http.NewRequest("POST", "http://example.com/submit", strings.NewReader(body))
		done := make(chan error, 1)
		go func() { done <- req.Write(client) }()
		res, pc, err := Peek(server, peekTimeout)
		if err != nil || res.Kind != KindHTTP {
			t.Fatalf("Peek: got %+v, %v, want %v", res, err, KindHTTP)
		}
		got, err := http.ReadRequest(bufio.NewReader(pc))
		if err != nil {
			t.Fatalf("read request from the peeked conn: %v", err)
		}
		b, err := io.ReadAll(got.Body)
		if err != nil || string(b) != body {
			t.Fatalf("request body: got %d bytes, %v, want %d bytes", len(b), err, len(body))
		}
		if err := <-done; err != nil {
			t.Fatalf("write request: %v", err)
		}
	})
}

// TestConnForwarding checks the paths a proxy takes to forward a peeked
// conn: io.Copy both ways between it and a TCP upstream (through WriteTo
// and ReadFrom, splice(2) underneath) and the half-close.
func TestConnForwarding(t *testing.T) {
	client, server := testutil.TCPPair(t)
	upClient, upServer := testutil.TCPPair(t)
	head := []byte("PUT /big HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1048576\r\n\r\n")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	reply := bytes.Repeat([]byte("fedcba9876543210"), 1<<15)

	go func() {
		client.Write(head)
		client.Write(payload)
		client.CloseWrite()
	}()
	res, pc, err := Peek(server, peekTimeout)
	if err != nil || res.Kind != KindHTTP {
		t.Fatalf("Peek: got %+v, %v, want %v", res, err, KindHTTP)
	}
	c := pc.(*Conn)

	// The proxy's two directions.
	upDone := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(upClient, c) // Conn.WriteTo
		upClient.CloseWrite()
		upDone <- n
	}()
	downDone := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(c, upClient) // Conn.ReadFrom
		c.CloseWrite()
		downDone <- n
	}()

	// The upstream reads everything the client sent, then EOF.
	got, err := io.ReadAll(upServer)
	if err != nil {
		t.Fatalf("upstream read: %v", err)
	}
	if want := append(head[:len(head):len(head)], payload...); !bytes.Equal(got, want) {
		t.Fatalf("upstream got %d bytes, want %d (the same)", len(got), len(want))
	}
	if n := <-upDone; n != int64(len(head)+len(payload)) {
		t.Errorf("io.Copy to upstream: got %d bytes, want %d", n, len(head)+len(payload))
	}
	go func() {
		upServer.Write(reply)
		upServer.CloseWrite()
	}()
	back, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if !bytes.Equal(back, reply) {
		t.Fatalf("client got %d bytes, want %d (the reply)", len(back), len(reply))
	}
	if n := <-downDone; n != int64(len(reply)) {
		t.Errorf("io.Copy to client: got %d bytes, want %d", n, len(reply))
	}
	if c.Unwrap() != net.Conn(server) {
		t.Errorf("Unwrap: got %T, want the accepted *net.TCPConn", c.Unwrap())
	}
}

// TestConnRead checks that a Read never mixes replayed and fresh bytes,
// so replaying never blocks.
func TestConnRead(t *testing.T) {
	client, server := pipePair(t)
	head := []byte("GET / HTTP/1.1\r\n\r\n")
	go client.Write(head)
	_, pc, err := Peek(server, peekTimeout)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	buf := make([]byte, 1024)
	n, err := pc.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], head) {
		t.Fatalf("first Read: got %q, %v, want %q, nil", buf[:n], err, head)
	}
	if got := pc.(*Conn).Buffered(); got != 0 {
		t.Fatalf("Buffered after replay: got %d, want 0", got)
	}
}

func TestConnCloseWriteUnsupported(t *testing.T) {
	_, server := pipePair(t)
	c := &Conn{Conn: server}
	if err := c.CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on a pipe: got %v, want %v", err, errors.ErrUnsupported)
	}
	if err := c.CloseRead(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseRead on a pipe: got %v, want %v", err, errors.ErrUnsupported)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindOther: "other", KindTLS: "tls", KindHTTP: "http", Kind(9): "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String(): got %q, want %q", int(k), got, want)
		}
	}
}

// selfSigned returns a certificate for name and a pool that trusts it.
func selfSigned(tb testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parse certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}
