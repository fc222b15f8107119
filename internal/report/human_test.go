package report

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/ratelog"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestHumanLevels(t *testing.T) {
	const tcpHint = "--tcp lets the rule decide non-HTTP connections"
	denied := req(event.Deny, "GET", "https://x.test/")
	allowed := req(event.Allow, "GET", "https://x/")
	allowed.PID, allowed.Status, allowed.DurationMS, allowed.BytesUp, allowed.BytesDown = 1, 200, 12.4, 180, 1234
	tooBig := req(event.Deny, "POST", "https://x.test/up")
	tooBig.Reason, tooBig.Status = "max_tx_bytes", 413
	badGateway := req(event.Allow, "GET", "https://down.test/")
	badGateway.Status = 502
	unreachable := req(event.Allow, "CONNECT", "https://down.test:443")
	unreachable.Reason = "upstream unreachable: dial tcp 203.0.113.5:443: connect: connection refused"
	blocked := event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", Hint: tcpHint,
		PID: 77, Comm: "nc", URL: "tcp://203.0.113.9:22", Scheme: "tcp", Host: "203.0.113.9", Port: 22}
	tlsFail := event.Event{Type: event.TypeConnection, Verdict: event.Deny,
		Reason: "TLS handshake failed: remote error: tls: unknown certificate authority", Hint: "use --no-mitm x.test",
		PID: 5, Comm: "node", URL: "https://x.test:443", Scheme: "https", Host: "x.test", Port: 443}
	tlsOddPort := tlsFail
	tlsOddPort.Port, tlsOddPort.Hint = 8443, ""
	silent := event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "no request: EOF",
		PID: 8, Comm: "curl", URL: "tcp://198.18.0.7:443", Dst: "198.18.0.7:443"}
	slow := silent
	slow.Reason = "no request: read tcp: i/o timeout"
	dnsOK := event.Event{Type: event.TypeDNS, Verdict: event.Allow, PID: 1, Comm: "curl", Name: "x.test", QType: "A",
		Rcode: "NOERROR", Answer: "198.18.0.7", DurationMS: 0.042}
	dnsNX := event.Event{Type: event.TypeDNS, Verdict: event.Allow, PID: 1, Comm: "dig", Name: "nope.test", QType: "AAAA", Rcode: "NXDOMAIN"}
	dnsDenied := event.Event{Type: event.TypeDNS, Verdict: event.Deny, Reason: "rule", PID: 3, Comm: "dig", Name: "evil.test", QType: "A", Rcode: "NXDOMAIN"}
	dnsFail := event.Event{Type: event.TypeDNS, Verdict: event.Allow, Reason: "read udp: i/o timeout", Comm: "dig", Name: "x.test", QType: "A", Rcode: "SERVFAIL"}
	exec := event.Event{Type: event.TypeExec, PID: 12, PPID: 10, Comm: "curl", Exe: "/usr/bin/curl",
		Argv: []string{"curl", "-s", "-H", "X-A: b", "https://x.test/"}}
	summary := event.Event{Type: event.TypeSummary, Summary: &event.Summary{ExitStatus: 1, DurationMS: 1500, Processes: make([]event.Process, 3)}}
	evilComm := req(event.Deny, "GET", "https://x.test/\x1b[2J")
	evilComm.Comm = "a\x1b]0;pwned\x07b"
	anon := event.Event{Type: event.TypeRequest, Verdict: event.Deny, Reason: "no rule", Method: "GET", URL: "http://h/"}

	tests := []struct {
		name string
		e    event.Event
		want [3]string // the line at -v 0, 1, 2 ("" for none)
	}{
		{"denied request", denied, all("denied GET https://x.test/ (curl pid 123): rule")},
		{"allowed request", allowed, [3]string{"", "allowed GET https://x/ 200 (curl pid 1) 12ms",
			"allowed GET https://x/ 200 (curl pid 1) 12ms up 180 B down 1.2 KiB"}},
		{"413", tooBig, all("denied POST https://x.test/up 413 (curl pid 123): max_tx_bytes")},
		{"502", badGateway, all("failed GET https://down.test/ 502 (curl pid 123)")},
		{"splice upstream unreachable", unreachable,
			all("failed CONNECT https://down.test:443 (curl pid 123): upstream unreachable: dial tcp 203.0.113.5:443: connect: connection refused")},
		{"blocked tcp", blocked, all("blocked tcp 203.0.113.9:22 (nc pid 77): non-HTTP; hint: " + tcpHint)},
		{"tls handshake", tlsFail, all("TLS handshake failed for x.test (node pid 5): remote error: tls: unknown certificate authority; hint: use --no-mitm x.test")},
		{"tls handshake, odd port", tlsOddPort, all("TLS handshake failed for x.test:8443 (node pid 5): remote error: tls: unknown certificate authority")},
		{"hung up without a byte", silent, [3]string{"", "blocked connection to 198.18.0.7:443 (curl pid 8): no request: EOF",
			"blocked connection to 198.18.0.7:443 (curl pid 8): no request: EOF"}},
		{"silent until the deadline", slow, all("blocked connection to 198.18.0.7:443 (curl pid 8): no request: read tcp: i/o timeout")},
		{"dns answer", dnsOK, [3]string{"", "dns A x.test 198.18.0.7 (curl pid 1)", "dns A x.test 198.18.0.7 (curl pid 1) 0.04ms"}},
		{"dns nxdomain", dnsNX, [3]string{"", "dns AAAA nope.test NXDOMAIN (dig pid 1)", "dns AAAA nope.test NXDOMAIN (dig pid 1)"}},
		{"dns denied", dnsDenied, all("denied dns A evil.test (dig pid 3): rule")},
		{"dns upstream failed", dnsFail, all("dns A x.test SERVFAIL (dig): read udp: i/o timeout")},
		{"exec", exec, [3]string{"", "", "exec /usr/bin/curl -s -H 'X-A: b' https://x.test/ (curl pid 12, parent 10)"}},
		{"summary", summary, [3]string{"", "", "summary: exit status 1 after 1.5s, 3 processes"}},
		{"escape sequences are defused", evilComm, all("denied GET https://x.test/?[2J (a?]0;pwned?b pid 123): rule")},
		{"no process", anon, all("denied GET http://h/: no rule")},
		{"unknown type", event.Event{Type: "future", PID: 4}, [3]string{"", "", "future event (pid 4)"}},
	}
	for _, tt := range tests {
		checkLevels(t, tt.name, tt.e, tt.want)
	}
}

// checkLevels checks e's line at -v 0, 1 and 2 ("" for none).
func checkLevels(t *testing.T, name string, e event.Event, want [3]string) {
	t.Helper()
	for v := range 3 {
		var buf bytes.Buffer
		NewHuman(&buf, v).Emit(e)
		w := ""
		if want[v] != "" {
			w = "ebpfjail: " + want[v] + "\n"
		}
		if got := buf.String(); got != w {
			t.Errorf("%s at -v %d:\n got %q\nwant %q", name, v, got, w)
		}
	}
}

func all(line string) [3]string { return [3]string{line, line, line} }

// TestHumanHintOnce: a hint is printed with the first line that has it,
// not again, and a line hidden by the verbosity does not use it up.
func TestHumanHintOnce(t *testing.T) {
	var buf bytes.Buffer
	h := NewHuman(&buf, 0)
	hidden := event.Event{Type: event.TypeConnection, Verdict: event.Allow, Scheme: "tcp", Host: "h", Port: 1, Hint: "do x"}
	blocked := event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", Scheme: "tcp", Host: "h", Port: 22, Hint: "do x"}
	h.Emit(hidden)
	h.Emit(blocked)
	h.Emit(blocked)
	want := "ebpfjail: blocked tcp h:22: non-HTTP; hint: do x\nebpfjail: blocked tcp h:22: non-HTTP\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestHumanLongURL: below -vv a huge URL is cut so the line stays a line.
func TestHumanLongURL(t *testing.T) {
	var buf bytes.Buffer
	NewHuman(&buf, 0).Emit(req(event.Deny, "GET", "https://x.test/"+strings.Repeat("a", 5000)))
	if n := len(buf.String()); n > 250 {
		t.Errorf("line is %d bytes: %q", n, buf.String())
	}
	if !strings.Contains(buf.String(), "... (curl pid 123): rule") {
		t.Errorf("cut is not marked: %q", buf.String())
	}
}

// TestHumanSimilarLinesAreLimited: a run of lines alike but for digits
// (a client resetting a thousand streams) shows a few, then one count.
func TestHumanSimilarLinesAreLimited(t *testing.T) {
	var buf syncBuffer
	h := NewHuman(&buf, 0)
	h.lim = ratelog.NewLimiter(2, 100*time.Millisecond)
	for i := range 1000 {
		h.Emit(event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", Scheme: "tcp", Host: "h", Port: 1000 + i})
	}
	h.Emit(event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "other", Scheme: "tcp", Host: "h", Port: 1})
	time.Sleep(300 * time.Millisecond)
	want := "ebpfjail: blocked tcp h:1000: non-HTTP\n" +
		"ebpfjail: blocked tcp h:1001: non-HTTP\n" +
		"ebpfjail: blocked tcp h:1: other\n" +
		"ebpfjail: blocked tcp h:1999: non-HTTP (998 more like this in 100ms not shown)\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHumanShowsEveryLineAtVV(t *testing.T) {
	var buf syncBuffer
	h := NewHuman(&buf, 2)
	for i := range 50 {
		h.Emit(event.Event{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", Scheme: "tcp", Host: "h", Port: 1000 + i})
	}
	if got := strings.Count(buf.String(), "\n"); got != 50 {
		t.Errorf("-vv: got %d lines, want all 50", got)
	}
}

// TestHumanSecretMisuseIsOneLine: a secret_misuse event is shown at every
// verbosity; the request it denied only at -vv, so the terminal says it
// once.
func TestHumanSecretMisuseIsOneLine(t *testing.T) {
	misuse := event.Event{Type: event.TypeSecretMisuse, Verdict: event.Deny, PID: 9, Comm: "node", Method: "POST",
		URL: "https://paste.test/api", Host: "paste.test", Port: 443, Secret: "API_KEY", Where: "body"}
	misuseDNS := event.Event{Type: event.TypeSecretMisuse, Verdict: event.Deny, PID: 9, Comm: "node", Scheme: "dns",
		Name: "abc.evil.test", Secret: "API_KEY", Where: "dns"}
	misused := req(event.Deny, "POST", "https://paste.test/api")
	misused.Reason = "secret_misuse: API_KEY in body"

	for _, tc := range []struct {
		name string
		e    event.Event
		want [3]string
	}{
		{"secret misuse", misuse, all("denied secret misuse: API_KEY's placeholder in body of POST https://paste.test/api (node pid 9)")},
		{"secret misuse dns", misuseDNS, all("denied secret misuse: API_KEY's placeholder in the dns name abc.evil.test (node pid 9)")},
		{"request denied for misuse", misused, [3]string{"", "", "denied POST https://paste.test/api (curl pid 123): secret_misuse: API_KEY in body"}},
	} {
		checkLevels(t, tc.name, tc.e, tc.want)
	}
}
