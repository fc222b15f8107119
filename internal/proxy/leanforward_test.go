package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// cannedOrigin answers each request with the raw response its path names.
func cannedOrigin(answers map[string]string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, answers[req.URL.Path])
			if strings.Contains(answers[req.URL.Path], "Connection: close") {
				return
			}
		}
	}
}

// TestLeanPathRelaysResponseFramings checks each way an origin frames a
// response reaches the client whole: chunked with trailers, a length, to
// the close (sent on chunked, the client connection kept), an early hint
// before the answer, a head larger than the upstream reader, and HEAD.
func TestLeanPathRelaysResponseFramings(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	answers := map[string]string{
		"/chunked": "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
		"/length":  "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello",
		"/close":   "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"/hint":    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/big":     "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\nContent-Length: 3\r\n\r\nbig",
		"/head":    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
	}
	origin := rawOrigin(t, cannedOrigin(answers))
	p := timeoutProxy(t, origin, false)
	c := dialProxy(t, p)
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tc := range []struct{ method, path, body, trailer string }{
		{"GET", "/chunked", "abcde", "5"},
		{"GET", "/length", "hello", ""},
		{"GET", "/close", "until the end", ""},
		{"GET", "/hint", "ok", ""},
		{"GET", "/big", "big", ""},
		{"HEAD", "/head", "", ""},
	} {
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", tc.method, tc.path, origin)
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		for err == nil && resp.StatusCode/100 == 1 { // an early hint, passed on
			resp, err = http.ReadResponse(br, &http.Request{Method: tc.method})
		}
		if err != nil {
			t.Fatalf("%s: read response: %v", tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != tc.body || resp.Trailer.Get("X-Sum") != tc.trailer {
			t.Errorf("%s: got %q (%v) trailer %q, want %q trailer %q", tc.path, b, err, resp.Trailer.Get("X-Sum"), tc.body, tc.trailer)
		}
		if resp.Header.Get("Keep-Alive") != "" || resp.Close {
			t.Errorf("%s: got Keep-Alive %q close %v; want neither (hop-by-hop, and the client connection kept)", tc.path, resp.Header.Get("Keep-Alive"), resp.Close)
		}
		if tc.path == "/big" && len(resp.Header.Get("X-Big")) != len(big) {
			t.Errorf("/big: got a %d-byte header, want %d", len(resp.Header.Get("X-Big")), len(big))
		}
		if tc.path == "/head" && resp.ContentLength != 1000 {
			t.Errorf("HEAD: got length %d, want 1000", resp.ContentLength)
		}
	}
}
