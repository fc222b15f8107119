package report

import (
	"net/http"
	"strings"
	"sync"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Tally is the human log on a terminal the command shares: instead of a
// line per problem, which would draw on the command's screen, it counts
// what the human log would have told at verbosity 0 and says it in one
// line at exit:
//
//	ebpfjail: 3 requests denied, 1 connection refused (watch them live with: sudo ebpfjail watch; record them with --log-json FILE; print them here with -v)
type Tally struct {
	mu     sync.Mutex
	counts TallyCounts
}

// TallyCounts are what a Tally counted.
type TallyCounts struct {
	Requests    int // HTTP requests the rule denied
	Names       int // DNS names the rule denied
	Connections int // connections refused (not HTTP, or not allowed)
	Handshakes  int // TLS handshakes the client rejected (it does not trust the CA)
	Failed      int // allowed requests and lookups ebpfjail could not forward
	Kernel      int // attempts the kernel refused (UDP, raw sockets, unix side doors, inbound packets)
}

// NewTally returns an empty Tally.
func NewTally() *Tally { return &Tally{} }

// Emit counts e if it is a problem the human log tells by default.
func (t *Tally) Emit(e event.Event) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case event.TypeRequest:
		switch {
		case e.Verdict != event.Allow:
			t.counts.Requests++
		case e.Status == http.StatusBadGateway || strings.HasPrefix(e.Reason, "upstream"):
			t.counts.Failed++
		}
	case event.TypeDNS:
		switch {
		case e.Verdict == event.Deny:
			t.counts.Names++
		case e.Rcode == "SERVFAIL":
			t.counts.Failed++
		}
	case event.TypeConnection:
		switch {
		case e.Verdict == event.Allow || e.Reason == "no request: EOF":
			// A client that hung up without a byte was refused nothing.
		case e.Scheme == "https" || strings.HasPrefix(e.Reason, "TLS handshake failed"):
			t.counts.Handshakes++ // as the human log tells them apart
		default:
			t.counts.Connections++
		}
	case event.TypeRefused:
		if refusedLevel(e) == 0 {
			t.counts.Kernel += max(e.Count, 1)
		}
	}
}

// Counts returns what t counted so far.
func (t *Tally) Counts() TallyCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts
}

// Line is the summary line, with its newline, for the counts; "" when
// nothing went wrong. where says where to see each one (SeeHint).
func (c TallyCounts) Line(where string) string {
	var parts []string
	add := func(n int, one, many, what string) {
		if n > 0 {
			parts = append(parts, plural(n, one, many)+" "+what)
		}
	}
	add(c.Requests, "request", "requests", "denied")
	add(c.Names, "DNS name", "DNS names", "denied")
	add(c.Connections, "connection", "connections", "refused")
	add(c.Handshakes, "TLS handshake", "TLS handshakes", "failed")
	add(c.Failed, "request", "requests", "failed upstream")
	add(c.Kernel, "attempt", "attempts", "refused by the kernel")
	if len(parts) == 0 {
		return ""
	}
	line := "ebpfjail: " + strings.Join(parts, ", ")
	if where != "" {
		line += " (" + where + ")"
	}
	return line + "\n"
}

// SeeHint says where to see each denial, given the --log-json argument
// ("" if none, "-" for stdout): the file when there is one.
func SeeHint(jsonLog string) string {
	const live = "watch them live with: sudo ebpfjail watch"
	switch jsonLog {
	case "":
		return live + "; record them with --log-json FILE; print them here with -v"
	case "-":
		return "they are in the JSON log on standard output; " + live
	}
	return "they are in " + clean(jsonLog) + "; " + live
}
