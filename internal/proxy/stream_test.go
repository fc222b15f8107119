package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// A response with a Content-Length that comes a byte at a time reaches
// the client a byte at a time, not once it is complete.
func TestTricklingResponseBodyIsPassedOnAsItComes(t *testing.T) {
	const n, step = 10, 50 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(n))
		rc := http.NewResponseController(w)
		for range n {
			w.Write([]byte{'x'})
			rc.Flush()
			time.Sleep(step)
		}
	}))
	t.Cleanup(srv.Close)
	origin := netip.MustParseAddrPort(srv.Listener.Addr().String())
	p := timeoutProxy(t, origin, false)
	c := dialProxy(t, p)
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", origin)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// The whole body takes n*step; its first byte, one step at most.
	if took := time.Since(start); took > n*step/2 {
		t.Errorf("first body byte after %v, want it well before the whole body (%v)", took, n*step)
	}
}
