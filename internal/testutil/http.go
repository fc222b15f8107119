//go:build linux

package testutil

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// HelloBody is what the test HTTP server answers on every path but /echo
// and /bytes.
const HelloBody = "hello from testhost\n"

// ServeHTTP serves HTTP/1.1 on [::]:port inside the host's namespace, which
// takes IPv4 too. Port 0 picks a free port; the returned listener tells
// which. Every response carries X-Remote-Addr (the client address the server
// saw) and X-Host (the request's Host). Paths:
//
//	/echo       answers with the request body
//	/bytes?n=N  answers with N bytes
//	anything    answers HelloBody
//
// The server and its connections are closed when the test ends.
func (h *Host) ServeHTTP(tb testing.TB, port int) net.Listener {
	tb.Helper()
	ln := h.Listen(tb, "tcp", net.JoinHostPort("::", strconv.Itoa(port)))
	var protos http.Protocols
	// No h2c either: tests that want HTTP/2 bring their own server.
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h.recording(http.HandlerFunc(serveTest)),
		Protocols:         &protos,
		ReadHeaderTimeout: 30 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// Not tb.Errorf: the test may be over by the time Serve fails.
			log.Printf("testutil: serve http in %s: %v", h.Name, err)
		}
	}()
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln
}

func serveTest(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Remote-Addr", r.RemoteAddr)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Proto", r.Proto)
	if r.URL.Path == "/ws" {
		websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }).ServeHTTP(w, r)
		return
	}
	switch r.URL.Path {
	case "/echo":
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.ContentLength >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		}
		// Both directions at once, or a large body would deadlock against
		// a client that writes everything before it reads.
		http.NewResponseController(w).EnableFullDuplex()
		io.Copy(w, r.Body)
	case "/bytes":
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		chunk := bytes.Repeat([]byte{'x'}, 32<<10)
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, HelloBody)
	}
}

// recording notes each request before next serves it.
func (h *Host) recording(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.seen = append(h.seen, r.Host+" "+r.URL.Path)
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// Requests lists "Host /path" for every HTTP(S) request the host's test
// servers received, in order.
func (h *Host) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}
