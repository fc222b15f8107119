package proxy

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"golang.org/x/net/http2"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

const (
	// maxHeaderBytes bounds the head of a request from the jail and of a
	// response from upstream, HTTP/1 and HTTP/2 alike (net/http's defaults
	// are 1 MiB and 10 MiB: a few dozen responses of 10 MiB of headers
	// took the proxy past a gigabyte). Real heads are a few KiB; large
	// cookies and tokens stay far below this. A larger request head is
	// answered 431, a larger response 502.
	maxHeaderBytes = 256 << 10
	// maxStreamsPerConn bounds the HTTP/2 streams one client connection
	// may have open (x/net's default is 250; browsers and servers
	// commonly use 100).
	maxStreamsPerConn = 100
	// DefaultMaxInFlight is Config.MaxInFlight's default: requests being
	// served at once for the whole jail, tens of KiB each while held.
	DefaultMaxInFlight = 4096
	// inFlightWait is how long a request over MaxInFlight waits for a
	// slot before it is answered 503.
	inFlightWait = time.Second
	// burstInFlight requests at once make a burst, after which the memory
	// it took is handed back to the system (trimAfterBursts).
	burstInFlight = 256
	// trimEvery is how often trimAfterBursts looks.
	trimEvery = 2 * time.Second
)

// admit takes a slot for one request, waiting up to inFlightWait for one
// to free; false means the jail has too many requests in flight (or the
// client went away meanwhile).
func (p *Proxy) admit(ctx context.Context) bool {
	select {
	case p.inFlight <- struct{}{}:
		p.notePeak()
		return true
	default:
	}
	t := time.NewTimer(inFlightWait)
	defer t.Stop()
	select {
	case p.inFlight <- struct{}{}:
		p.notePeak()
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// release gives back the slot admit took.
func (p *Proxy) release() { <-p.inFlight }

// notePeak records the most requests in flight since trimAfterBursts last
// looked.
func (p *Proxy) notePeak() {
	n := int64(len(p.inFlight))
	for {
		peak := p.peakInFlight.Load()
		if n <= peak || p.peakInFlight.CompareAndSwap(peak, n) {
			return
		}
	}
}

// trimAfterBursts hands memory back to the system once a burst of
// requests (held streams, a flood) is over. The Go runtime keeps freed
// memory until a collection, which an idle proxy may not run for minutes,
// so a burst would otherwise leave ebpfjail at its peak size; one forced
// collection per burst costs milliseconds.
func (p *Proxy) trimAfterBursts() {
	defer p.wg.Done()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	var peak int64
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		now := int64(len(p.inFlight))
		peak = max(peak, p.peakInFlight.Swap(now))
		if peak >= burstInFlight && now <= peak/4 {
			debug.FreeOSMemory()
			peak = 0
		}
	}
}

// refuseBusy answers a request that found no slot: never an allow, and
// the rule was not asked.
func (p *Proxy) refuseBusy(c *conn, w http.ResponseWriter, r *http.Request) {
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme = r.Method, c.scheme+"://"+r.Host+r.URL.RequestURI(), c.scheme
	e.Verdict, e.Status = event.Deny, http.StatusServiceUnavailable
	e.Reason = "too many requests in flight in this jail"
	p.emit(e)
	writeText(w, http.StatusServiceUnavailable, "Too many requests in flight through ebpfjail; try again\n")
}

// newErrorLog is net/http's and x/net/http2's error log (malformed
// requests, reset streams, handshake failures): the client's doing, one
// line per event, so at debug level, and through the configured logger,
// which rate-limits repeats.
func newErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

// newH2Server serves one MITM'd HTTP/2 connection, with the same head
// bound as HTTP/1 and a bound on open streams.
func (p *Proxy) newH2Server() (*http2.Server, *http.Server) {
	return &http2.Server{
			IdleTimeout:          p.cfg.Timeouts.KeepAlive,
			MaxConcurrentStreams: maxStreamsPerConn,
		}, &http.Server{
			MaxHeaderBytes: maxHeaderBytes,
			ErrorLog:       p.errorLog,
		}
}
