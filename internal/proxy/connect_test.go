package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// A CONNECT over HTTP/2 inside intercepted TLS cannot be answered by
// ebpfjail (no connection to take over): it is refused, never forwarded
// to the origin, which (were it a proxy) would open a tunnel to a port the
// rule never saw.
func TestConnectOverHTTP2InsideInterceptedTLSIsRefusedNotForwarded(t *testing.T) {
	var connects atomic.Int32
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		io.WriteString(w, "origin")
	}))
	origin.EnableHTTP2 = true
	origin.StartTLS()
	t.Cleanup(origin.Close)
	m := newMITM(t, origin)
	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: m.roots, ServerName: "example.com"},
		DialTLSContext: func(ctx context.Context, _, _ string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", m.addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	body, w := io.Pipe()
	defer w.Close()
	req, err := http.NewRequest(http.MethodConnect, "https://example.com:8449", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "example.com:8449"
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("CONNECT over HTTP/2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || connects.Load() != 0 {
		t.Errorf("CONNECT over HTTP/2: got status %d and %d CONNECTs at the origin, want 400 and none", resp.StatusCode, connects.Load())
	}
}
