package helptopics

import (
	"embed"
	"fmt"
	"io"
	"sort"
	"strings"
)

//go:embed topics/*.txt
var files embed.FS

// aliases are other words people type for a topic.
var aliases = map[string]string{
	"r": "rules", "rule": "rules", "js": "rules",
	"exit-codes": "exit", "status": "exit", "codes": "exit",
	"log": "logs", "example": "examples",
}

// Names lists the topics, sorted.
func Names() []string {
	ents, _ := files.ReadDir("topics")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".txt"))
	}
	sort.Strings(out)
	return out
}

// Text is the topic's text (name or an alias, any case); ok is false for
// no such topic.
func Text(name string) (text string, ok bool) {
	name = strings.ToLower(name)
	if a, found := aliases[name]; found {
		name = a
	}
	if strings.ContainsAny(name, "/.") {
		return "", false
	}
	b, err := files.ReadFile("topics/" + name + ".txt")
	return string(b), err == nil
}

// List writes one line per topic: its name and its summary (the first
// line of its text).
func List(w io.Writer) {
	for _, n := range Names() {
		t, _ := Text(n)
		first, _, _ := strings.Cut(t, "\n")
		fmt.Fprintf(w, "  %-9s %s\n", n, first)
	}
}
