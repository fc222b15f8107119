package replay

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/*.rule.js")

func generate(t *testing.T, s *Session) string {
	t.Helper()
	var b bytes.Buffer
	if err := Generate(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The rule is the golden file, byte for byte, and the same every time.
func TestRuleFromIsDeterministicAndReadable(t *testing.T) {
	for _, name := range []string{"forward", "fake", "edge"} {
		got := generate(t, session(t, name+".jsonl"))
		if again := generate(t, session(t, name+".jsonl")); again != got {
			t.Errorf("%s: two runs differ:\n%s\n---\n%s", name, got, again)
		}
		golden := "testdata/" + name + ".rule.js"
		if *update {
			os.WriteFile(golden, []byte(got), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil || got != string(want) {
			t.Errorf("%s: got\n%s\nwant (%s, go test -update rewrites it)\n%s", name, got, golden, want)
		}
	}
}

// The rule compiles, and on the session it came from it allows what was
// allowed and denies what was not: requests, forward-mode lookups, and in
// a --dns fake session the names of the hosts it contacted only.
func TestRuleFromAllowsExactlyWhatTheSessionDid(t *testing.T) {
	for _, name := range []string{"forward", "audit", "fake", "edge"} {
		s := session(t, name+".jsonl")
		e := jsRule(t, generate(t, s))
		contacted := map[string]bool{}
		granted := map[string]bool{} // the rule's grain: no path
		for _, d := range s.Decisions {
			if d.Allowed && d.Request.Scheme != "dns" {
				contacted[d.Request.Host] = true
				granted[requestKey(d.Request)+" "+d.Request.Method] = true
			}
		}
		check := func(d Decision, want bool) {
			if v := e.Evaluate(context.Background(), d.Request); v.Allow != want {
				t.Errorf("%s line %d: %s %s by %s: got allow %v (%s), want %v", name, d.Line, d.Request.Method, d.Request.URL, d.Request.Proc.Exe, v.Allow, v.Reason, want)
			}
		}
		for _, d := range s.Decisions {
			check(d, d.Allowed || granted[requestKey(d.Request)+" "+d.Request.Method])
		}
		for _, d := range s.FakeLookups {
			check(d, contacted[d.Request.Host])
		}
		for _, d := range s.AuditLookups {
			check(d, d.Allowed)
		}
	}
}

// Anything the session did not do is denied: another host, method, port,
// scheme or executable.
func TestRuleFromDeniesWhatIsNew(t *testing.T) {
	e := jsRule(t, generate(t, session(t, "forward.jsonl")))
	curl := rules.Proc{PID: 1, Comm: "curl", Exe: "/usr/bin/curl"}
	for _, tc := range []struct {
		method string
		d      rules.Dest
		proc   rules.Proc
		allow  bool
	}{
		{"GET", rules.Dest{Scheme: "https", Host: "a.replay.test", Port: 443}, curl, true},
		{"QUERY", rules.Dest{Scheme: "dns", Host: "b.replay.test", Port: 53}, rules.Proc{}, true},
		{"GET", rules.Dest{Scheme: "https", Host: "c.replay.test", Port: 443}, curl, false},
		{"POST", rules.Dest{Scheme: "https", Host: "a.replay.test", Port: 443}, curl, false},
		{"GET", rules.Dest{Scheme: "https", Host: "a.replay.test", Port: 8443}, curl, false},
		{"GET", rules.Dest{Scheme: "http", Host: "a.replay.test", Port: 443}, curl, false},
		{"GET", rules.Dest{Scheme: "https", Host: "a.replay.test", Port: 443}, rules.Proc{Comm: "curl", Exe: "/tmp/curl"}, false},
		{"QUERY", rules.Dest{Scheme: "dns", Host: "lookup.replay.test", Port: 53}, curl, false},
		{"QUERY", rules.Dest{Scheme: "dns", Host: "c.replay.test", Port: 53}, curl, false},
	} {
		r := rules.NewRequest(tc.method, tc.d, nil, "127.0.0.1", tc.proc)
		if v := e.Evaluate(context.Background(), r); v.Allow != tc.allow {
			t.Errorf("%s %s by %q: got allow %v (%s), want %v", r.Method, r.URL, tc.proc.Exe, v.Allow, v.Reason, tc.allow)
		}
	}
}

// Text from the jail (a comm, a host) cannot end a comment or a string
// early: the rule still compiles and still denies.
func TestRuleFromSurvivesHostileFields(t *testing.T) {
	in := `{"v":1,"type":"request","time":"2026-01-02T03:04:05Z","verdict":"allow","reason":"rule","comm":"x\u2028true;//\n*/","exe":"/x\"];true;//","method":"GET","url":"https://a.test/","scheme":"https","host":"a.test\u2029\"","port":443}`
	s, err := Read(strings.NewReader(in), "s\njs")
	if err != nil {
		t.Fatal(err)
	}
	src := generate(t, s)
	e := jsRule(t, src)
	r := rules.NewRequest("GET", rules.Dest{Scheme: "https", Host: "b.test", Port: 443}, nil, "127.0.0.1", rules.Proc{})
	if v := e.Evaluate(context.Background(), r); v.Allow {
		t.Errorf("a host the session never contacted is allowed by:\n%s", src)
	}
	if v := e.Evaluate(context.Background(), s.Decisions[0].Request); !v.Allow {
		t.Errorf("the recorded request is denied (%s) by:\n%s", v.Reason, src)
	}
}
