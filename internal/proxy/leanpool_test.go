package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// scriptedOrigin answers HTTP/1.1 requests on raw connections, counting
// connections and requests by method; on its first connection it answers
// one request, then reads the next and closes without an answer (an
// origin that closed a kept-alive connection just as a request came).
type scriptedOrigin struct {
	conns atomic.Int32
	mu    sync.Mutex
	seen  map[string]int
}

func (o *scriptedOrigin) serve(c net.Conn) {
	defer c.Close()
	n := o.conns.Add(1)
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		o.mu.Lock()
		o.seen[req.Method]++
		o.mu.Unlock()
		if n == 1 && i == 1 {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (o *scriptedOrigin) count(method string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[method]
}

// leanSend sends raw requests on one client connection and reads one
// response per request.
func leanSend(t *testing.T, p *Proxy, host string, reqs ...string) []int {
	t.Helper()
	c := dialProxy(t, p)
	defer c.Close()
	br := bufio.NewReader(c)
	var got []int
	for _, r := range reqs {
		io.WriteString(c, strings.ReplaceAll(r, "HOST", host))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, resp.StatusCode)
	}
	return got
}

func TestLeanPathReusesUpstreamConnections(t *testing.T) {
	o := &scriptedOrigin{seen: map[string]int{}}
	o.conns.Store(1) // no scripted close
	origin := rawOrigin(t, o.serve)
	p := timeoutProxy(t, origin, false)
	get := "GET / HTTP/1.1\r\nHost: HOST\r\n\r\n"
	leanSend(t, p, origin.String(), get, get, get)
	leanSend(t, p, origin.String(), get)
	if n := o.conns.Load() - 1; n != 1 || o.count("GET") != 4 {
		t.Errorf("origin saw %d connections for %d requests; want 1 for 4", n, o.count("GET"))
	}
}

func TestLeanPathRetriesADeadPooledConnectionOnlyForIdempotentRequests(t *testing.T) {
	get := "GET / HTTP/1.1\r\nHost: HOST\r\n\r\n"
	post := "POST / HTTP/1.1\r\nHost: HOST\r\nContent-Length: 3\r\n\r\nabc"
	t.Run("GET is sent again", func(t *testing.T) {
		o := &scriptedOrigin{seen: map[string]int{}}
		origin := rawOrigin(t, o.serve)
		p := timeoutProxy(t, origin, false)
		if got := leanSend(t, p, origin.String(), get, get); got[0] != 200 || got[1] != 200 {
			t.Errorf("got %v, want [200 200]", got)
		}
		if o.count("GET") != 3 || o.conns.Load() != 2 {
			t.Errorf("origin saw %d GETs on %d connections; want 3 on 2", o.count("GET"), o.conns.Load())
		}
	})
	t.Run("POST is not", func(t *testing.T) {
		o := &scriptedOrigin{seen: map[string]int{}}
		origin := rawOrigin(t, o.serve)
		p := timeoutProxy(t, origin, false)
		if got := leanSend(t, p, origin.String(), get, post); got[0] != 200 || got[1] != http.StatusBadGateway {
			t.Errorf("got %v, want [200 502]", got)
		}
		if o.count("POST") != 1 {
			t.Errorf("origin saw %d POSTs; want 1 (never sent again)", o.count("POST"))
		}
	})
}

func TestLeanPoolIsBounded(t *testing.T) {
	lp := newLeanPool(nil, nil, nil)
	var closed atomic.Int32
	put := func(key string) {
		a, b := net.Pipe()
		t.Cleanup(func() { b.Close() })
		lp.put(&upConn{nc: &closeCounter{Conn: a, n: &closed}, br: bufio.NewReader(a), key: key})
	}
	for range leanIdlePerHost + 10 {
		put("http|a:80")
	}
	if got := len(lp.idle["http|a:80"]); got != leanIdlePerHost || closed.Load() != 10 {
		t.Errorf("one host: %d kept, %d closed; want %d kept, 10 closed", got, closed.Load(), leanIdlePerHost)
	}
	for i := range leanIdleTotal {
		put(fmt.Sprintf("http|h%d:80", i))
	}
	if lp.count != leanIdleTotal {
		t.Errorf("all hosts: %d kept, want %d", lp.count, leanIdleTotal)
	}
	if u := lp.take("http|a:80"); u == nil || !u.reused {
		t.Errorf("take: got %v, want a kept connection marked reused", u)
	}
	lp.close()
	if lp.count != 0 || closed.Load() != int32(10+leanIdlePerHost+leanIdleTotal-1) {
		t.Errorf("after close: %d kept, %d closed", lp.count, closed.Load())
	}
}

type closeCounter struct {
	net.Conn
	n    *atomic.Int32
	once sync.Once
}

func (c *closeCounter) Close() error {
	c.once.Do(func() { c.n.Add(1) })
	return c.Conn.Close()
}

// TestLeanPathHandsAmbiguousFramingToNetHTTPAndDecidesEachRequest sends,
// after a request served lean, one whose Content-Length and
// Transfer-Encoding disagree, with a request hidden where a reader of
// Content-Length would take it for body: net/http reads the chunked
// framing, so the hidden request is a request of its own, and the rule
// (which refuses its path) decides it; the origin never sees it.
func TestLeanPathHandsAmbiguousFramingToNetHTTPAndDecidesEachRequest(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	origin := netip.MustParseAddrPort(srv.Listener.Addr().String())
	k := &fakeKernel{}
	k.set(record{Dst: origin}, true)
	var dials atomic.Int32
	p := newProxyWith(t, k, nil, &dials, ruleFunc(func(r *rules.Request) rules.Verdict {
		return rules.Verdict{Allow: r.Path != "/smuggled"}
	}))
	hidden := "GET /smuggled HTTP/1.1\r\nHost: HOST\r\n\r\n"
	smuggle := fmt.Sprintf("POST /post HTTP/1.1\r\nHost: HOST\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 5+len(hidden))
	got := leanSend(t, p, origin.String(), "GET /first HTTP/1.1\r\nHost: HOST\r\n\r\n", smuggle+hidden, "")
	if got[0] != 200 || got[1] != 200 || got[2] != http.StatusForbidden {
		t.Errorf("statuses: got %v, want [200 200 403]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(paths, ",") != "GET /first,POST /post" {
		t.Errorf("origin saw %v, want [GET /first POST /post]", paths)
	}
}

// TestLeanPoolDropsConnectionsTheOriginClosed checks that an idle
// upstream connection the origin closes is closed here too, soon, not
// held until it would be used or time out.
func TestLeanPoolDropsConnectionsTheOriginClosed(t *testing.T) {
	origin := rawOrigin(t, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(100 * time.Millisecond) // then close: an origin's idle timeout
	})
	p := timeoutProxy(t, origin, false)
	leanSend(t, p, origin.String(), "GET / HTTP/1.1\r\nHost: HOST\r\n\r\n")
	deadline := time.Now().Add(3 * leanSweepEvery)
	for {
		p.lean.mu.Lock()
		n := p.lean.count
		p.lean.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle upstream connections: got %d %v after the origin closed, want 0", n, 3*leanSweepEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
