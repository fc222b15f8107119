package replay

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// The fixtures are real --log-json sessions (but edge.jsonl, written by
// hand for the reasons a small run cannot produce):
//
//   - forward.jsonl: --dns forward, --js "r.host === 'a.replay.test' ||
//     r.host === 'b.replay.test'"; curl to a and b, getent of
//     lookup.replay.test (denied).
//   - audit.jsonl: --audit --dns forward --js "r.host === 'a.replay.test'";
//     curl to a, b and c.
//   - fake.jsonl: --dns fake, --js "r.host !== 'b.replay.test'"; GET a,
//     POST b (denied), GET c2vjcmv0.exfil.test (allowed, no upstream),
//     getent lookup.replay.test.
func session(t *testing.T, name string) *Session {
	t.Helper()
	s, err := ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsRule(t *testing.T, src string) rules.Engine {
	t.Helper()
	e, err := rules.NewJS(src, "--js", rules.JSOptions{Timeout: time.Second, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func replayText(t *testing.T, file, rule string) (*Result, string) {
	t.Helper()
	res := Compare(context.Background(), jsRule(t, rule), session(t, file))
	var b bytes.Buffer
	res.Write(&b)
	return res, b.String()
}

func TestReplayOfTheRecordedRuleChangesNothing(t *testing.T) {
	for file, rule := range map[string]string{
		"forward.jsonl": "r.host === 'a.replay.test' || r.host === 'b.replay.test'",
		"audit.jsonl":   "r.host === 'a.replay.test'",
		"fake.jsonl":    "r.host !== 'b.replay.test'",
	} {
		res, out := replayText(t, file, rule)
		if len(res.Flips) != 0 || res.Compared == 0 || !strings.HasPrefix(out, "no change: ") {
			t.Errorf("%s: got %d flips of %d compared:\n%s\nwant none", file, len(res.Flips), res.Compared, out)
		}
	}
}

func TestReplayListsExactlyTheFlips(t *testing.T) {
	for _, tc := range []struct {
		file, rule string
		want       []string
	}{
		{"forward.jsonl", "r.host === 'a.replay.test'", []string{
			"was allowed → now denied  2×  QUERY dns://b.replay.test  by curl (/usr/bin/curl) pid 7528",
			"was allowed → now denied  1×  GET https://b.replay.test/two  by curl (/usr/bin/curl) pid 7528",
			"3 of 8 decision(s) change: 3 allowed → denied, 0 denied → allowed",
		}},
		// The audit's rule would have denied b and c: an audit-only rule
		// that allows them flips exactly those two, whatever happened.
		{"audit.jsonl", "true", []string{
			"was denied → now allowed  1×  GET https://b.replay.test/two  by curl (/usr/bin/curl) pid 8971",
			"was denied → now allowed  1×  GET https://c.replay.test/three  by curl (/usr/bin/curl) pid 8976",
			"2 of 3 decision(s) change: 0 allowed → denied, 2 denied → allowed; 6 not decided by a rule (refused before it, or --dns fake), not compared",
		}},
		{"fake.jsonl", "r.method === 'GET' && r.host.endsWith('.replay.test')", []string{
			"was allowed → now denied  1×  GET https://c2vjcmv0.exfil.test/  by curl (/usr/bin/curl) pid 9004",
			"1 of 3 decision(s) change: 1 allowed → denied, 0 denied → allowed; 8 not decided by a rule (refused before it, or --dns fake), not compared",
		}},
	} {
		_, out := replayText(t, tc.file, tc.rule)
		if got, want := strings.TrimSpace(out), strings.Join(tc.want, "\n"); got != want {
			t.Errorf("%s with %q:\ngot\n%s\nwant\n%s", tc.file, tc.rule, got, want)
		}
	}
}

// The rule's recorded verdict under --ask, max_tx_bytes and the refusals
// that come before any rule.
func TestReplayComparesWithTheRulesRecordedVerdict(t *testing.T) {
	s := session(t, "edge.jsonl")
	want := map[string]bool{ // URL → the rule's recorded verdict
		"https://ask.example.test/once":            false, // person: allow once
		"https://ask.example.test/no":              false,
		"https://ask.example.test/late":            false,
		"https://ask.example.test/busy":            false,
		"https://upload.example.test/big":          true, // max_tx_bytes
		"http://plain.example.test:8080/a%20b?q=1": false,
		"https://down.example.test/":               true,
		"dns://c2vjcmv0.exfil.test":                false,
		"https://pinned.example.test:443":          true,
	}
	got := map[string]bool{}
	for _, d := range s.Decisions {
		got[d.Request.URL] = d.RuleAllowed
	}
	if len(got) != len(want) || s.NotRuled != 2 {
		t.Errorf("got %d decisions, %d not ruled: %v\nwant %d, 2 (the loop, the busy jail)", len(got), s.NotRuled, got, len(want))
	}
	for u, w := range want {
		if g, ok := got[u]; !ok || g != w {
			t.Errorf("%s: got rule verdict %v (present %v), want %v", u, g, ok, w)
		}
	}
}

// What the rule sees is what NewRequest makes live: the folded name of a
// lookup asked in mixed case, the process of its pid from the exec event,
// the path of a URL.
func TestReplayRebuildsWhatTheRuleSaw(t *testing.T) {
	s := session(t, "edge.jsonl")
	for _, d := range s.Decisions {
		r := d.Request
		switch r.Scheme {
		case "dns":
			if r.Method != "QUERY" || r.Host != "c2vjcmv0.exfil.test" || r.Port != 53 || r.Proc.Exe != "/opt/tool" || r.Proc.PPID != 1 {
				t.Errorf("lookup: got %+v", r)
			}
		case "http":
			if r.Path != "/a b" || r.Port != 8080 || r.Proc.Exe != "/usr/bin/curl" || r.RequesterIP != "127.0.0.1" {
				t.Errorf("request: got %+v", r)
			}
		}
	}
}

func TestReplayReadErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{\"v\":1,\"type\":\"exec\",\"time\":\"2026-01-02T03:04:05Z\"}\n\n{\"v\":1,\"type\":\"requ", "s line 3: not a JSON event"},
		{"{\"v\":2,\"type\":\"request\",\"time\":\"2026-01-02T03:04:05Z\"}\n", "s line 1: not a version-1 event (v 2"},
		{"[1,2]\n", "s line 1: not a JSON event"},
		{"{\"v\":1}\n", "s line 1: not a version-1 event"},
		{strings.Repeat("x", maxLine+1), "s line 1: line longer than"},
	} {
		_, err := Read(strings.NewReader(tc.in), "s")
		var re *ReadError
		if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%.40q: got %v, want an error starting %q", tc.in, err, tc.want)
		}
	}
	if _, err := ReadFile("testdata/no-such-file.jsonl"); err == nil || !strings.Contains(err.Error(), "read testdata/no-such-file.jsonl") {
		t.Errorf("missing file: got %v", err)
	}
	s, err := Read(strings.NewReader("\n"), "empty")
	if err != nil {
		t.Fatalf("empty: %v", err)
	}
	var b bytes.Buffer
	if status := Run(context.Background(), &b, rules.DenyAll(), s); status != 0 || !strings.HasPrefix(b.String(), "no change: nothing to compare") {
		t.Errorf("empty: got status %d, %q; want 0, nothing to compare", status, b.String())
	}
}

func TestReplayOutputCannotForgeLines(t *testing.T) {
	in := `{"v":1,"type":"request","time":"2026-01-02T03:04:05Z","verdict":"allow","reason":"rule","comm":"x\nwas denied → now allowed","method":"GET","url":"https://a.test/\u2028b","scheme":"https","host":"a.test","port":443}`
	s, err := Read(strings.NewReader(in), "s")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Compare(context.Background(), rules.DenyAll(), s).Write(&b)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || strings.ContainsRune(b.String(), '\u2028') {
		t.Errorf("got %q, want one flip line and the summary", b.String())
	}
}
