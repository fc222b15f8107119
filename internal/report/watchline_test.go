package report

import (
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestWatchLineShowsEveryEventAndColoursTheVerdict(t *testing.T) {
	denied := event.Event{Type: event.TypeRequest, Verdict: event.Deny, Reason: "rule", Method: "GET", URL: "https://x.test/", PID: 7, Comm: "curl"}
	allowed := event.Event{Type: event.TypeRequest, Verdict: event.Allow, Reason: "rule", Method: "GET", URL: "https://x.test/", Status: 200, PID: 7, Comm: "curl"}
	exec := event.Event{Type: event.TypeExec, PID: 7, PPID: 1, Comm: "curl", Exe: "/usr/bin/curl", Argv: []string{"curl", "-s", "https://x.test/"}}
	dns := event.Event{Type: event.TypeDNS, Verdict: event.Allow, Name: "x.test", QType: "A", Answer: "198.18.0.7", PID: 7, Comm: "curl"}
	unixDoor := event.Event{Type: event.TypeRefused, Verdict: event.Deny, Reason: "unix socket on the deny list", PID: 7, Comm: "docker",
		Op: "connect", Family: "unix", SockType: "stream", Dst: "/run/docker.sock"}
	for _, c := range []struct {
		e           event.Event
		plain, tint string
	}{
		{denied, "denied GET https://x.test/ (curl pid 7): rule", "\x1b[31mdenied\x1b[0m GET"},
		{allowed, "allowed GET https://x.test/ 200 (curl pid 7)", "\x1b[32mallowed\x1b[0m GET"},
		{exec, "exec /usr/bin/curl -s https://x.test/ (curl pid 7, parent 1)", "exec /usr/bin/curl"},
		{dns, "dns A x.test 198.18.0.7 (curl pid 7)", "\x1b[32mdns\x1b[0m A"},
		// Shown in watch even where the terminal log waits for -v.
		{unixDoor, "refused unix stream connect /run/docker.sock (docker pid 7): unix socket on the deny list", "\x1b[31mrefused\x1b[0m unix"},
	} {
		if got := WatchLine(c.e, false); got != c.plain {
			t.Errorf("WatchLine(%s) = %q, want %q", c.e.Type, got, c.plain)
		}
		if got := WatchLine(c.e, true); !strings.HasPrefix(got, c.tint) {
			t.Errorf("WatchLine(%s, colour) = %q, want it to start %q", c.e.Type, got, c.tint)
		}
	}
	person := allowed
	person.Reason = "person: allow once"
	if got, want := WatchLine(person, false), "allowed GET https://x.test/ 200 (curl pid 7): person: allow once"; got != want {
		t.Errorf("WatchLine(allowed by a person) = %q, want %q", got, want)
	}
	evil := event.Event{Type: event.TypeRequest, Verdict: event.Deny, Method: "GET", URL: "https://x.test/\x1b[2J", Comm: "a\x1bb"}
	if got := WatchLine(evil, true); strings.Count(got, "\x1b") != 2 {
		t.Errorf("an untrusted field reached the terminal: %q", got)
	}
}
