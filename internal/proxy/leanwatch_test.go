package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// TestLeanPathEndsAnUpstreamWaitWhenTheClientGoesAway checks that a
// request held by its origin (a long poll, before and after the response
// head) is torn down at the origin when the client goes away.
func TestLeanPathEndsAnUpstreamWaitWhenTheClientGoesAway(t *testing.T) {
	gone := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			gone <- r.URL.Path
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	origin := netip.MustParseAddrPort(srv.Listener.Addr().String())
	p := timeoutProxy(t, origin, false)
	p.cfg.Timeouts.UpstreamIdle = time.Minute
	for _, path := range []string{"/head", "/body"} {
		c := dialProxy(t, p)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, origin)
		time.Sleep(500 * time.Millisecond)
		c.Close()
		select {
		case got := <-gone:
			if got != path {
				t.Errorf("origin saw %s go, want %s", got, path)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the origin still holds the request 5s after the client went away", path)
		}
	}
}
