package replay

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// Whatever the session file holds, reading it, replaying it and writing a
// rule from it do not panic, and the rule written always compiles and
// allows what the session was allowed to do.
func FuzzRuleFrom(f *testing.F) {
	for _, name := range []string{"forward", "audit", "fake", "edge"} {
		b, err := os.ReadFile("testdata/" + name + ".jsonl")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Read(bytes.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Generate(&out, s); err != nil {
			t.Fatal(err)
		}
		e := jsRule(t, out.String())
		Run(context.Background(), &bytes.Buffer{}, e, s)
		for _, d := range s.Decisions {
			if d.Allowed && !e.Evaluate(context.Background(), d.Request).Allow {
				t.Fatalf("line %d: %s %s denied by the rule written from it:\n%s", d.Line, d.Request.Method, d.Request.URL, out.String())
			}
		}
	})
}
