package proxy

import (
	"io"
	"net/http"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// newEvent starts an event about connection c: the process and the
// destination it asked for.
func (c *conn) newEvent(typ string) event.Event {
	e := event.Event{
		V: event.Version, Type: typ, Time: time.Now().UTC(),
		PID: c.proc.PID, PPID: c.proc.PPID, UID: c.proc.UID, Comm: c.proc.Comm, Exe: c.proc.Exe,
	}
	if c.who.Dst.IsValid() {
		e.Dst = c.who.Dst.String()
	}
	return e
}

// requestEvent is the event of one rule evaluation.
func (c *conn) requestEvent(req *rules.Request, v rules.Verdict) event.Event {
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme, e.Host, e.Port = req.Method, req.URL, req.Scheme, req.Host, req.Port
	e.Verdict, e.Reason = event.Deny, v.Reason
	if v.Allow {
		e.Verdict = event.Allow
	}
	// Under --audit, an allowed request may carry what the rule would have
	// said.
	e.DenyMessage = v.DenyMessage
	return e
}

// emit hands e to the configured sink (Config.Events), if any.
func (p *Proxy) emit(e event.Event) {
	if p.cfg.Events != nil {
		p.cfg.Events(e)
	}
}

func sinceMS(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}

// countingWriter counts what goes to the client and remembers the status.
// Unwrap lets http.ResponseController (which ReverseProxy uses to flush
// and to take over upgraded connections) reach the real writer.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	// rc and idle bound each write: a client that takes none of the
	// response for idle is dropped (Timeouts.ClientIdle).
	rc      *http.ResponseController
	idle    time.Duration
	armedAt time.Time
}

// arm pushes the write deadline idle ahead, at most every idle/8 (a
// deadline is a timer update, not free at every small write).
func (w *countingWriter) arm() {
	if w.rc == nil || w.idle <= 0 {
		return
	}
	if now := time.Now(); now.Sub(w.armedAt) > w.idle/8 {
		w.armedAt = now
		w.rc.SetWriteDeadline(now.Add(w.idle))
	}
}

func (w *countingWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.arm()
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body sent upstream.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
