package report

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/ratelog"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Human writes the human log, for stderr, where it interleaves with the
// command's own output: short lines, one per event worth telling, each
// starting "ebpfjail: " and naming the process, no colours.
//
// What is worth telling depends on verbose (the number of -v):
//
//	0  what went wrong: denied requests and DNS names, blocked connections,
//	   TLS handshakes the client rejected, upstream failures
//	1  also every allowed request (status, duration), every DNS answer,
//	   and connections that hung up without sending a byte
//	2  also exec and summary events, byte counts and DNS timings
//
// Examples:
//
//	ebpfjail: denied GET https://x.test/ (curl pid 123): rule
//	ebpfjail: blocked tcp 203.0.113.9:22 (nc pid 77): non-HTTP; hint: --tcp lets the rule decide non-HTTP connections
//	ebpfjail: TLS handshake failed for x.test (node pid 5): remote error: tls: bad certificate; hint: ...
//	ebpfjail: allowed GET https://x.test/ 200 (curl pid 1) 12ms
//	ebpfjail: dns A x.test 198.18.0.7 (curl pid 1)
//	ebpfjail: exec /usr/bin/curl -s https://x.test/ (curl pid 12, parent 10)
//
// A hint is printed the first time it comes up, not on every line: the
// tenth blocked connection needs no repeat of what --tcp does.
//
// Similar lines (the same but for digits) are limited to a few per
// interval on the terminal, then one line says how many more there were:
// a client resetting thousands of streams must not bury the rest. The
// JSON and request logs keep every event, and -vv shows every line.
type Human struct {
	lw      lineWriter
	verbose int
	lim     *ratelog.Limiter // nil at -vv

	mu    sync.Mutex
	hints map[string]bool // hints already printed
}

// maxHints bounds the memory of printed hints (a hint may name a host);
// past it, hints are printed every time.
const maxHints = 1024

// maxURL bounds a URL in a human line, below -vv.
const maxURL = 160

// NewHuman returns a Human writing to w (stderr) at the given verbosity.
func NewHuman(w io.Writer, verbose int) *Human {
	h := &Human{lw: lineWriter{w: w}, verbose: max(verbose, 0), hints: map[string]bool{}}
	if h.verbose < 2 {
		h.lim = ratelog.NewLimiter(humanBurst, humanInterval)
	}
	return h
}

// humanBurst similar lines per humanInterval reach the terminal.
const (
	humanBurst    = 5
	humanInterval = 10 * time.Second
)

// Emit writes e's line if e is worth telling at h's verbosity.
func (h *Human) Emit(e event.Event) {
	if h == nil {
		return
	}
	line, level := h.format(e)
	if line == "" || level > h.verbose {
		return
	}
	if e.Hint != "" && h.firstTime(e.Hint) {
		line += "; hint: " + clean(e.Hint)
	}
	say := func(held int) { h.lw.write([]byte("ebpfjail: " + h.lim.Summary(line, held) + "\n")) }
	if h.lim == nil || h.lim.Admit(ratelog.Key(line), say) {
		h.lw.write([]byte("ebpfjail: " + line + "\n"))
	}
}

// Err returns the first error writing the log, if any.
func (h *Human) Err() error {
	if h == nil {
		return nil
	}
	return h.lw.firstErr()
}

// format returns e's line (without the "ebpfjail: " prefix) and the
// verbosity from which it is shown.
func (h *Human) format(e event.Event) (string, int) {
	if strings.HasPrefix(e.Reason, secretMisusePrefix) && e.Type != event.TypeSecretMisuse {
		// Its secret_misuse event says it, on one line; -vv shows both.
		line, _ := h.formatType(e)
		return line, 2
	}
	return h.formatType(e)
}

// secretMisusePrefix starts the reason of what a secret_misuse event
// denied.
const secretMisusePrefix = "secret_misuse: "

func (h *Human) formatType(e event.Event) (string, int) {
	switch e.Type {
	case event.TypeSecretMisuse:
		return secretMisuse(e), 0
	case event.TypeRequest:
		return h.request(e)
	case event.TypeConnection:
		return h.connection(e)
	case event.TypeDNS:
		return h.dns(e)
	case event.TypeExec:
		return h.exec(e), 2
	case event.TypeSummary:
		return summaryLine(e), 2
	}
	return join(clean(e.Type), "event", procLabel(e)), 2
}

func (h *Human) request(e event.Event) (string, int) {
	failed := e.Status == http.StatusBadGateway || strings.HasPrefix(e.Reason, "upstream")
	if e.Verdict == event.Allow && !failed && h.verbose < 1 {
		// Not shown: skip the formatting, which is on every request's path.
		return "", 1
	}
	target := join(clean(e.Method), h.url(e.URL))
	if e.Verdict != event.Allow {
		status := ""
		if e.Status != 0 && e.Status != http.StatusForbidden {
			status = strconv.Itoa(e.Status) // 413 for max_tx_bytes says more than "denied"
		}
		return withReason(join("denied", target, status, procLabel(e)), e), 0
	}
	status := ""
	if e.Status != 0 {
		status = strconv.Itoa(e.Status)
	}
	// An allowed request ebpfjail could not forward: 502 from the proxy,
	// or a spliced connection whose upstream was unreachable.
	if failed {
		line := join("failed", target, status, procLabel(e))
		if strings.HasPrefix(e.Reason, "upstream") {
			line = withReason(line, e)
		}
		return line, 0
	}
	line := join("allowed", target, status, procLabel(e))
	if e.DurationMS > 0 {
		line += " " + humanMS(e.DurationMS)
	}
	if h.verbose >= 2 && (e.BytesUp > 0 || e.BytesDown > 0) {
		line += " up " + humanBytes(e.BytesUp) + " down " + humanBytes(e.BytesDown)
	}
	return line, 1
}

// secretMisuse is the line of a secret_misuse event: what carried the
// placeholder and where in it. Never a value: the event holds none.
func secretMisuse(e event.Event) string {
	if e.Where == "dns" {
		return join("denied", "secret misuse:", clean(e.Secret)+"'s placeholder in the dns name", clean(e.Name), procLabel(e))
	}
	what := join(clean(e.Method), clean(e.URL))
	if e.URL == "" {
		what = clean(joinHostPort(hostPort(e)))
	}
	return join("denied", "secret misuse:", clean(e.Secret)+"'s placeholder in", clean(e.Where), "of", what, procLabel(e))
}

func (h *Human) connection(e event.Event) (string, int) {
	host, port := hostPort(e)
	where := clean(joinHostPort(host, port))
	if e.Verdict == event.Allow {
		return join("allowed", clean(e.Scheme), where, procLabel(e)), 1
	}
	if e.Scheme == "https" || strings.HasPrefix(e.Reason, "TLS handshake failed") {
		// The schema's mark of a TLS handshake failure; the port is
		// noise when it is the usual one.
		if port == 443 {
			where = clean(joinHostPort(host, 0))
		}
		detail := strings.TrimPrefix(e.Reason, "TLS handshake failed: ")
		return join("TLS handshake failed for", where, procLabel(e)) + ": " + clean(detail), 0
	}
	level := 0
	if e.Reason == "no request: EOF" {
		// A client that connected and hung up without a byte (a
		// happy-eyeballs loser, a port probe): nothing was refused.
		level = 1
	}
	what := "connection to"
	if e.Scheme != "" {
		what = clean(e.Scheme)
	}
	return withReason(join("blocked", what, where, procLabel(e)), e), level
}

func (h *Human) dns(e event.Event) (string, int) {
	q := join("dns", clean(e.QType), clean(e.Name))
	if e.Verdict == event.Deny {
		return withReason(join("denied", q, procLabel(e)), e), 0
	}
	result := clean(e.Answer)
	if result == "" || (e.Rcode != "" && e.Rcode != "NOERROR") {
		result = clean(e.Rcode)
	}
	line := join(q, result, procLabel(e))
	if e.Rcode == "SERVFAIL" {
		// Forward mode could not reach the upstream resolver.
		return withReason(line, e), 0
	}
	if h.verbose >= 2 && e.DurationMS > 0 {
		line += " " + humanMS(e.DurationMS)
	}
	return line, 1
}

func (h *Human) exec(e event.Event) string {
	args := e.Argv
	prog := e.Exe
	if prog == "" && len(args) > 0 {
		prog = args[0]
	}
	words := []string{"exec", shellQuote(prog)}
	if len(args) > 1 {
		for _, a := range args[1:] {
			words = append(words, shellQuote(a))
		}
	}
	cmd := shorten(clean(strings.Join(words, " ")), 200)
	who := procLabel(e)
	if e.PPID != 0 && who != "" {
		who = strings.TrimSuffix(who, ")") + ", parent " + strconv.FormatUint(uint64(e.PPID), 10) + ")"
	}
	return join(cmd, who)
}

func summaryLine(e event.Event) string {
	if e.Summary == nil {
		return "summary"
	}
	s := e.Summary
	return "summary: exit status " + strconv.Itoa(s.ExitStatus) + " after " + humanMS(s.DurationMS) +
		", " + plural(len(s.Processes), "process", "processes")
}

// url shortens a URL for a line, below -vv.
func (h *Human) url(u string) string {
	u = clean(u)
	if h.verbose < 2 {
		u = shorten(u, maxURL)
	}
	return u
}

// withReason appends ": reason".
func withReason(line string, e event.Event) string {
	if e.Reason != "" {
		line += ": " + clean(e.Reason)
	}
	return line
}

// firstTime reports whether hint is printed for the first time (and
// remembers it). Only lines actually written call it, so a hint on a line
// hidden by the verbosity is not used up.
func (h *Human) firstTime(hint string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hints[hint] {
		return false
	}
	if len(h.hints) < maxHints {
		h.hints[hint] = true
	}
	return true
}

// join joins the non-empty words with spaces.
func join(words ...string) string {
	var b strings.Builder
	for _, w := range words {
		if w == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// shellQuote quotes an argument the way a shell would need it, so an
// exec line shows where each argument starts and ends.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
