package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// replaySite is an origin serving three names over HTTPS and answering
// DNS for them, for sessions run with --dns forward (so lookups are the
// rule's to decide, and replay's to compare).
type replaySite struct {
	h  *testutil.Host
	ca *testutil.TestCA
}

func newReplaySite(t *testing.T) replaySite {
	t.Helper()
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	s := replaySite{h: testutil.NewHost(t), ca: testutil.NewTestCA(t)}
	s.h.ServeHTTPS(t, 443, s.ca, replayHosts...)
	s.h.ServeDNS(t, 53)
	return s
}

var replayHosts = []string{"a.replay.test", "b.replay.test", "c.replay.test"}

// session runs script (sh -c) in a jail under rule (the --js or --js-file
// flag and its value) and returns the events it logged.
func (s replaySite) session(t *testing.T, rule []string, script string) (string, []event.Event, result) {
	t.Helper()
	events := eventsPath(t)
	args := append([]string{"--user", "nobody", "--dns", "forward", "--dns-upstream", s.h.IPv4.String(), "--log-json", events}, rule...)
	for _, h := range replayHosts {
		args = append(args, "--resolve", h+":"+s.h.IPv4.String())
	}
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, append(args, "--", "sh", "-c", script)...)
	return events, readEvents(t, events), r
}

// curlScript fetches each URL and names it with its status; "curl a" says
// a.replay.test answered 200.
func curlScript(ip string, urls ...string) string {
	var b strings.Builder
	for _, u := range urls {
		host := strings.Split(strings.TrimPrefix(u, "https://"), "/")[0]
		// --resolve for c only: it is never looked up, so its request
		// reaches the rule whatever the rule says about its name.
		pin := ""
		if strings.HasPrefix(host, "c.") {
			pin = " --resolve " + host + ":443:" + ip
		}
		b.WriteString("curl -sS -o /dev/null -w '" + host + " %{http_code}\\n'" + pin + " " + u + "; ")
	}
	b.WriteString("getent ahosts lookup.replay.test >/dev/null; echo lookup $?")
	return b.String()
}

// decisions lists the rule decisions of a session, "verdict TYPE what",
// sorted and deduplicated.
func decisions(events []event.Event, skipHost string) []string {
	var out []string
	for _, e := range events {
		var what string
		switch {
		case e.Type == event.TypeRequest && e.Host != skipHost:
			what = e.Method + " " + e.URL
		case e.Type == event.TypeDNS && !strings.EqualFold(e.Name, skipHost):
			what = "QUERY dns://" + strings.ToLower(e.Name)
		default:
			continue
		}
		out = append(out, e.Verdict+" "+e.Type+" "+what)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestPrivilegedReplayAndRuleFromRoundTrip(t *testing.T) {
	s := newReplaySite(t)
	rule := "r.host === 'a.replay.test' || r.host === 'b.replay.test'"
	script := curlScript(s.h.IPv4.String(), "https://a.replay.test/one", "https://b.replay.test/two")
	events, recorded, r := s.session(t, []string{"--js", rule}, script)
	contains(t, "first run", r.stdout, "a.replay.test 200")
	contains(t, "first run", r.stdout, "b.replay.test 200")
	contains(t, "first run", r.stdout, "lookup 2") // getent: not found
	if dir := os.Getenv("EBPFJAIL_REPLAY_FIXTURES"); dir != "" {
		b, _ := os.ReadFile(events)
		os.WriteFile(filepath.Join(dir, "forward.jsonl"), b, 0o644)
	}
	t.Run("same-rule-no-change", func(t *testing.T) {
		r := jail(t, runOpts{}, "replay", events, "--js", rule)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "no change") {
			t.Errorf("replay with the recorded rule: got %s, want exit 0 and \"no change\"", r)
		}
	})
	t.Run("stricter-rule-lists-the-flips", func(t *testing.T) {
		replayStricter(t, events, recorded, "--js", "r.host === 'a.replay.test'")
	})
	t.Run("stricter-sh-rule-lists-the-same-flips", func(t *testing.T) {
		replayStricter(t, events, recorded, "--sh", `test "$HTTPJAIL_HOST" = a.replay.test`)
	})
	t.Run("rule-from-reruns-the-same", func(t *testing.T) {
		policy := filepath.Join(t.TempDir(), "policy.js")
		if r := jail(t, runOpts{}, "rule-from", events, "-o", policy); r.code != 0 {
			t.Fatalf("rule-from: %s", r)
		}
		src, _ := os.ReadFile(policy)
		t.Logf("rule-from wrote:\n%s", src)
		rerun := curlScript(s.h.IPv4.String(), "https://a.replay.test/one", "https://b.replay.test/two", "https://c.replay.test/three")
		_, again, r := s.session(t, []string{"--js-file", policy}, rerun)
		contains(t, "rerun", r.stdout, "a.replay.test 200")
		contains(t, "rerun", r.stdout, "b.replay.test 200")
		contains(t, "rerun: the new host", r.stdout, "c.replay.test 403")
		if got, want := decisions(again, "c.replay.test"), decisions(recorded, ""); !slices.Equal(got, want) {
			t.Errorf("rerun decisions:\ngot  %q\nwant %q", got, want)
		}
		if got := decisions(again, ""); !slices.Contains(got, "deny request GET https://c.replay.test/three") {
			t.Errorf("rerun: got %q, want c.replay.test's request denied", got)
		}
		for _, req := range s.h.Requests() {
			if strings.HasPrefix(req, "c.replay.test") {
				t.Errorf("the origin received a request the rule-from rule should deny: %q", req)
			}
		}
	})
	noJailsLeft(t)
}

// replayStricter replays a rule that drops b.replay.test: exactly its
// request and its lookups flip, each as one line, and replay exits 1.
func replayStricter(t *testing.T, events string, recorded []event.Event, rule ...string) {
	r := jail(t, runOpts{}, append([]string{"replay", events}, rule...)...)
	if r.code != 1 {
		t.Errorf("replay with a stricter rule: got %s, want exit 1", r)
	}
	var want []string
	for _, d := range decisions(recorded, "") {
		if strings.HasPrefix(d, "allow ") && strings.Contains(d, "//b.replay.test") {
			want = append(want, strings.SplitN(d, " ", 3)[2])
		}
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if rest, ok := strings.CutPrefix(line, "was allowed → now denied  "); ok {
			f := strings.Fields(rest) // COUNT× METHOD URL by ...
			if len(f) >= 3 {
				got = append(got, f[1]+" "+f[2])
			}
		} else if !strings.Contains(line, "decision(s) change") {
			t.Errorf("unexpected line: %q", line)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) < 2 || !slices.Equal(got, want) {
		t.Errorf("flips:\ngot  %q\nwant %q (a request and a lookup at least)\n%s", got, want, r)
	}
}

// After an --audit with no rule, rule-from's rule lets a rerun do what the
// audited program did, and nothing else.
func TestPrivilegedRuleFromAnAuditAllowsWhatTheProgramDid(t *testing.T) {
	s := newReplaySite(t)
	script := curlScript(s.h.IPv4.String(), "https://a.replay.test/one", "https://b.replay.test/two")
	events, recorded, r := s.session(t, []string{"--audit"}, script)
	contains(t, "audit", r.stdout, "lookup 0") // the audit allowed the lookup too
	policy := filepath.Join(t.TempDir(), "policy.js")
	if r := jail(t, runOpts{}, "rule-from", events, "-o", policy); r.code != 0 {
		t.Fatalf("rule-from: %s", r)
	}
	rerun := curlScript(s.h.IPv4.String(), "https://a.replay.test/one", "https://b.replay.test/two", "https://c.replay.test/three")
	_, again, r := s.session(t, []string{"--js-file", policy}, rerun)
	for _, want := range []string{"a.replay.test 200", "b.replay.test 200", "c.replay.test 403", "lookup 0"} {
		contains(t, "rerun", r.stdout, want)
	}
	if got, want := decisions(again, "c.replay.test"), decisions(recorded, ""); !slices.Equal(got, want) {
		t.Errorf("rerun decisions:\ngot  %q\nwant %q", got, want)
	}
	noJailsLeft(t)
}

// A session file that cannot be read is its own exit status, with the
// line at fault; a usage error is 2; each is one error line and a hint.
func TestReplayErrorsNameTheFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"v":1,"type":"exec","time":"2026-01-02T03:04:05Z"}`+"\n"+`{"v":1,"type":"requ`+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"replay", bad, "--js", "true"}, 3, "ebpfjail: error: " + bad + " line 2: not a JSON event"},
		{[]string{"rule-from", filepath.Join(dir, "none.jsonl")}, 3, "ebpfjail: error: read " + filepath.Join(dir, "none.jsonl")},
		{[]string{"replay", bad}, 2, "ebpfjail: error: replay needs the rule to try"},
		{[]string{"rule-from", bad, "--audit"}, 2, "ebpfjail: error: rule-from does not take --audit"},
	} {
		r := jail(t, runOpts{}, tc.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.want) || len(lines) != 2 || !strings.HasPrefix(lines[1], "ebpfjail: hint: ") {
			t.Errorf("%q: got %s\nwant exit %d, %q and one hint", tc.args, r, tc.code, tc.want)
		}
	}
	r := jail(t, runOpts{}, "replay", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "ebpfjail replay run.jsonl --js-file policy-v2.js") {
		t.Errorf("replay --help: got %s, want its examples", r)
	}
}
