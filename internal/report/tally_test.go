package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestTallyCountsWhatTheHumanLogTellsByDefault(t *testing.T) {
	tl := NewTally()
	evs := []event.Event{
		{Type: event.TypeRequest, Verdict: event.Deny, Status: 403},
		{Type: event.TypeRequest, Verdict: event.Deny, Status: 413},
		{Type: event.TypeRequest, Verdict: event.Allow, Status: 200},                 // fine
		{Type: event.TypeRequest, Verdict: event.Allow, Status: 502},                 // failed
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP"},        // refused
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "no request: EOF"}, // nothing refused
		{Type: event.TypeConnection, Verdict: event.Allow},
		{Type: event.TypeConnection, Verdict: event.Deny, Scheme: "https", Reason: "TLS handshake failed: remote error"}, // fine
		{Type: event.TypeDNS, Verdict: event.Deny, Name: "x.test"},                                                       // denied name
		{Type: event.TypeDNS, Verdict: event.Allow, Rcode: "SERVFAIL"},                                                   // failed
		{Type: event.TypeExec, Argv: []string{"curl"}},                                                                   // not a problem
		{Type: event.TypeRefused, Verdict: event.Deny, Op: "sendmsg", Family: "inet", Proto: "udp", Count: 3},            // 3 refused
		{Type: event.TypeRefused, Verdict: event.Deny, Op: "socket", Family: "inet", SockType: "raw"},                    // 1 refused
		{Type: event.TypeRefused, Verdict: event.Deny, Op: "connect", Family: "inet", Proto: "udp"},                      // glibc's probe: -v
	}
	for _, e := range evs {
		tl.Emit(e)
	}
	want := TallyCounts{Requests: 2, Names: 1, Connections: 1, Handshakes: 1, Failed: 2, Kernel: 4}
	if got := tl.Counts(); got != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
	var nilTally *Tally
	nilTally.Emit(evs[0]) // ignored, no panic
}

func TestTallyLine(t *testing.T) {
	for _, tc := range []struct {
		c    TallyCounts
		want string
	}{
		{TallyCounts{}, ""},
		{TallyCounts{Requests: 1}, "ebpfjail: 1 request denied (WHERE)\n"},
		{TallyCounts{Requests: 3, Connections: 1}, "ebpfjail: 3 requests denied, 1 connection refused (WHERE)\n"},
		{TallyCounts{Names: 2, Connections: 2, Failed: 1}, "ebpfjail: 2 DNS names denied, 2 connections refused, 1 request failed upstream (WHERE)\n"},
		{TallyCounts{Handshakes: 1}, "ebpfjail: 1 TLS handshake failed (WHERE)\n"},
		{TallyCounts{Kernel: 2}, "ebpfjail: 2 attempts refused by the kernel (WHERE)\n"},
	} {
		if got := tc.c.Line("WHERE"); got != tc.want {
			t.Errorf("%+v: Line = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestSeeHintNamesTheJSONLogWhenThereIsOne(t *testing.T) {
	if h := SeeHint(""); !strings.Contains(h, "sudo ebpfjail watch") || !strings.Contains(h, "--log-json FILE") || !strings.Contains(h, "-v") {
		t.Errorf("SeeHint(\"\") = %q", h)
	}
	if h := SeeHint("/tmp/ev.json"); !strings.Contains(h, "/tmp/ev.json") || strings.Contains(h, "--log-json FILE") {
		t.Errorf("SeeHint(file) = %q", h)
	}
	if h := SeeHint("x\x1b[2Jy"); strings.Contains(h, "\x1b") {
		t.Errorf("SeeHint kept an escape: %q", h)
	}
	line := TallyCounts{Requests: 3, Connections: 1}.Line(SeeHint(""))
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Errorf("not one line: %q", line)
	}
}

func TestGateHoldsUntilRelease(t *testing.T) {
	var b bytes.Buffer
	g := NewGate(&b)
	g.Write([]byte("before\n"))
	g.Hold()
	g.Write([]byte("during\n"))
	if b.String() != "before\n" {
		t.Fatalf("held gate wrote: %q", b.String())
	}
	g.Release()
	g.Write([]byte("after\n"))
	if b.String() != "before\nduring\nafter\n" {
		t.Fatalf("got %q", b.String())
	}
	g.Release() // not held: nothing more
	if b.String() != "before\nduring\nafter\n" {
		t.Fatalf("second release wrote: %q", b.String())
	}
	var nilGate *Gate
	nilGate.Hold()
	nilGate.Release()
}

func TestGateBoundsWhatItHolds(t *testing.T) {
	var b bytes.Buffer
	g := NewGate(&b)
	g.Hold()
	for range maxHeld + 3 {
		g.Write([]byte("w\n"))
	}
	g.Release()
	if n := strings.Count(b.String(), "w\n"); n != maxHeld {
		t.Errorf("%d lines written, want %d", n, maxHeld)
	}
	if !strings.HasSuffix(b.String(), "ebpfjail: 3 more messages while the command ran, left out\n") {
		t.Errorf("no count of the rest: %q", b.String()[len(b.String())-80:])
	}
}
