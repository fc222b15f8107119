package helptopics

import (
	"strings"
	"testing"
)

// Each topic starts with its one-line summary and a blank line (List shows
// the summary); every alias leads to a topic; nothing outside topics/ is
// read.
func TestTopicsHaveASummaryAndAliasesResolve(t *testing.T) {
	for _, n := range Names() {
		text, ok := Text(n)
		lines := strings.SplitN(text, "\n", 3)
		if !ok || len(lines) < 3 || lines[0] == "" || lines[1] != "" {
			t.Errorf("topic %s: got %q, want a summary line, a blank line, then the text", n, text)
		}
	}
	for alias, topic := range aliases {
		a, ok1 := Text(alias)
		b, ok2 := Text(topic)
		if !ok1 || !ok2 || a != b {
			t.Errorf("alias %s: got %v, want topic %s", alias, ok1, topic)
		}
	}
	for _, bad := range []string{"", "../doc.go", "topics/rules", "rules.txt", "nope"} {
		if _, ok := Text(bad); ok {
			t.Errorf("Text(%q): got a topic, want none", bad)
		}
	}
}
