package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
)

var leanRequestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"GET /x?y=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //x/../y HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n",
	"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"DELETE /a?b=%20c&d HTTP/1.1\r\nhost: A.example:0080\r\nX-Empty:\r\nX-Tab:\t v \t\r\ncookie: a=1\r\nCookie: b=2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: \xc3\xa9\r\n\r\n",
	"GET /? HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nProxy-Connection: close\r\nKeep-Alive: 5\r\n\r\n",
	"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
}

var leanResponseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 404\r\nconnection: Keep-Alive, X-A\r\ncontent-length: 0\r\nX-A: 1\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 999 Whatever \xff\r\nTransfer-Encoding: Chunked\r\n\r\n",
}

// FuzzLeanParse feeds the same bytes to the lean parser and to net/http's
// (http.ReadRequest, and http.ReadResponse for a GET's response): a head
// the lean parser takes must be one net/http accepts, read the same:
// method, target, Host, the other header lines in order, Connection:
// close, and the body's framing. The lean parser may refuse more (then the
// request goes to net/http itself, a response is answered 502).
func FuzzLeanParse(f *testing.F) {
	for _, s := range leanRequestSeeds {
		f.Add([]byte(s), false)
	}
	for _, s := range leanResponseSeeds {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, response bool) {
		end := leanHeadEnd(b)
		if end == 0 {
			return
		}
		head := b[:end]
		if response {
			checkLeanResponse(t, head)
			return
		}
		checkLeanRequest(t, head)
	})
}

func checkLeanRequest(t *testing.T, head []byte) {
	h, ok := parseLeanRequest(head)
	if !ok {
		return
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		t.Fatalf("lean took %q, net/http refused it: %v", head, err)
	}
	if req.Method != h.method || req.RequestURI != h.target || req.Host != h.host || req.URL.String() != h.url.String() {
		t.Fatalf("%q: got %s %s host %q, net/http %s %s host %q", head, h.method, h.target, h.host, req.Method, req.RequestURI, req.Host)
	}
	want := max(h.contentLength, 0)
	if req.ContentLength != want || len(req.TransferEncoding) != 0 || req.Close != h.close {
		t.Fatalf("%q: got length %d close %v, net/http %d %v close %v", head, want, h.close, req.ContentLength, req.TransferEncoding, req.Close)
	}
	sameFields(t, head, h.fields, req.Header, "Host")
}

func checkLeanResponse(t *testing.T, head []byte) {
	h, ok := parseLeanResponse(head)
	if !ok {
		return
	}
	req := &http.Request{Method: http.MethodGet}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), req)
	if err != nil {
		t.Fatalf("lean took %q, net/http refused it: %v", head, err)
	}
	if res.StatusCode != h.status || res.ProtoMinor != int(h.minor) || res.Status != h.target {
		t.Fatalf("%q: got status %d minor %d, net/http %d %d", head, h.status, h.minor, res.StatusCode, res.ProtoMinor)
	}
	if !leanNoBody(h.status, http.MethodGet) {
		gotChunked := slices.Equal(res.TransferEncoding, []string{"chunked"})
		if gotChunked != h.chunked || (!h.chunked && res.ContentLength != h.contentLength) {
			t.Fatalf("%q: got chunked %v length %d, net/http %v %d", head, h.chunked, h.contentLength, res.TransferEncoding, res.ContentLength)
		}
	}
	// net/http moves Trailer to res.Trailer and drops a Connection that
	// says close, having read it.
	skip := []string{"Transfer-Encoding", "Trailer"}
	if res.Close {
		skip = append(skip, "Connection")
	}
	sameFields(t, head, h.fields, res.Header, skip...)
}

// sameFields checks that the lean fields, but skip, are what net/http read.
func sameFields(t *testing.T, head []byte, fields []leanField, hdr http.Header, skip ...string) {
	skipped := func(name string) bool {
		return slices.ContainsFunc(skip, func(s string) bool { return strings.EqualFold(s, name) })
	}
	n := 0
	seen := map[string]int{}
	for _, f := range fields {
		name := http.CanonicalHeaderKey(f.name)
		if skipped(name) {
			continue
		}
		vs := hdr.Values(name)
		i := seen[name]
		seen[name]++
		if i >= len(vs) || vs[i] != f.value {
			t.Fatalf("%q: field %s: %q (#%d), net/http %q", head, name, f.value, i, vs)
		}
		n++
	}
	total := 0
	for k, vs := range hdr {
		if !skipped(k) {
			total += len(vs)
		}
	}
	if total != n {
		t.Fatalf("%q: %d fields, net/http %d: %v", head, n, total, hdr)
	}
}

// TestLeanParseRefusesAmbiguousHeads checks the heads the lean path must
// leave to net/http (requests) or refuse (responses).
func TestLeanParseRefusesAmbiguousHeads(t *testing.T) {
	for _, s := range []string{
		"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	} {
		if h, ok := parseLeanRequest([]byte(s)); ok {
			t.Errorf("request %q: taken (%+v), want it left to net/http", s, h)
		}
	}
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
		"HTTP/2.0 200 OK\r\n\r\n",
	} {
		if h, ok := parseLeanResponse([]byte(s)); ok {
			t.Errorf("response %q: taken (%+v), want a refusal", s, h)
		}
	}
}

// TestLeanParseTakesCommonHeads checks the common heads are served lean.
func TestLeanParseTakesCommonHeads(t *testing.T) {
	for _, s := range leanRequestSeeds[:3] {
		if _, ok := parseLeanRequest([]byte(s)); !ok {
			t.Errorf("request %q: left to net/http, want it taken", s)
		}
	}
	for _, s := range []string{leanResponseSeeds[0], leanResponseSeeds[1], leanResponseSeeds[5], leanResponseSeeds[7]} {
		if _, ok := parseLeanResponse([]byte(s)); !ok {
			t.Errorf("response %q: refused, want it taken", s)
		}
	}
}
