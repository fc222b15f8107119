package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseReplayTakesARuleAndOneFile(t *testing.T) {
	// A --js-file must exist when the command line is read.
	pjs := filepath.Join(t.TempDir(), "p.js")
	if err := os.WriteFile(pjs, []byte("true"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args           []string
		word, events   string
		js, jsFile, to string
	}{
		{[]string{"replay", "run.jsonl", "--js", "true"}, "replay", "run.jsonl", "true", "", ""},
		{[]string{"replay", "--js-file", pjs, "-"}, "replay", "-", "", pjs, ""},
		{[]string{"--js", "true", "replay", "run.jsonl"}, "replay", "run.jsonl", "true", "", ""},
		{[]string{"rule-from", "run.jsonl", "-o", "p.js"}, "rule-from", "run.jsonl", "", "", "p.js"},
		{[]string{"rule-from", "run.jsonl"}, "rule-from", "run.jsonl", "", "", ""},
	} {
		o, err := parseArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		a := o.replay
		if a == nil || a.word != tc.word || a.events != tc.events || o.js != tc.js || o.jsFile != tc.jsFile || a.output != tc.to {
			t.Errorf("%q: got %+v js %q js-file %q, want %s %s js %q js-file %q -o %q", tc.args, a, o.js, o.jsFile, tc.word, tc.events, tc.js, tc.jsFile, tc.to)
		}
	}
	if o, err := parseArgs([]string{"replay", "--help"}); err != nil || o.help || !o.replay.help {
		t.Errorf("replay --help: got %v, want replay's own help", err)
	}
}

func TestParseReplayRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"replay", "run.jsonl"},                               // no rule
		{"replay", "--js", "true"},                            // no file
		{"replay", "a.jsonl", "b.jsonl", "--js", "true"},      // two files
		{"replay", "run.jsonl", "--js", "true", "--sh", "x"},  // two rules
		{"replay", "run.jsonl", "--js", "true", "--audit"},    // a jail's flag
		{"replay", "run.jsonl", "--js", "true", "-o", "p.js"}, // rule-from's flag
		{"rule-from", "run.jsonl", "--js", "true"},            // rule-from writes the rule
		{"rule-from"},
		{"rule-from", "run.jsonl", "-o"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("%q: got nil error, want a usage error", args)
		}
	}
}
