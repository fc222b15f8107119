package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsSplitsOptionsFromTheCommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		command []string
		check   bool
	}{
		{[]string{"--", "curl", "-v", "https://x"}, []string{"curl", "-v", "https://x"}, false},
		{[]string{"-v", "curl", "-v"}, []string{"curl", "-v"}, false},
		{[]string{"--user", "alice", "--timeout", "1.5", "--", "check"}, []string{"check"}, false},
		{[]string{"check"}, nil, true},
	} {
		o, err := parseArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(o.command, tc.command) || o.check != tc.check {
			t.Errorf("%q: got command %q check %v, want %q %v", tc.args, o.command, o.check, tc.command, tc.check)
		}
	}
}

func TestParseArgsRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-v"},
		{"--timeout", "-1", "--", "true"},
		{"--timeout", "soon", "--", "true"},
		{"--no-such-flag", "--", "true"},
		{"--cleanup", "--", "true"},
		{"check", "extra"},
		{"check", "--target", "203.0.113.1"},
		{"check", "--attack", "--target", "203.0.113.1"},
		{"check", "--attack", "--target", "203.0.113.1", "--target", "203.0.113.2"},
		{"check", "--attack", "--target", "::ffff:203.0.113.1", "--target", "2001:db8::1"},
		{"check", "--attack", "--target", "host.example", "--target", "2001:db8::1"},
		{"check", "--attack=maybe"},
		{"--dns-upstream", "resolver.example", "--", "true"},
		{"--dns-upstream", "203.0.113.53:0", "--", "true"},
		{"--allow-inbound", "--weak", "--", "true"},
		{"--allow-inbound", "--server"},
		{"--secret", "KEY", "--", "true"},
		{"--secret", "KEY=api.example", "--no-mitm", "*.example", "--", "true"},
		{"--secret", "KEY=api.example", "--server"},
		{"--secret-in-body", "KEY", "--", "true"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("%q: got nil error, want a usage error", args)
		}
	}
}

func TestParseCheckAttack(t *testing.T) {
	o, err := parseArgs([]string{"--user", "nobody", "check", "--attack", "--target", "203.0.113.1", "--target", "2001:db8:eb::1"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.check || !o.attack || o.user != "nobody" || len(o.targets) != 2 {
		t.Errorf("got check %v attack %v user %q targets %q, want true true nobody [2 targets]", o.check, o.attack, o.user, o.targets)
	}
	if o, err := parseArgs([]string{"check"}); err != nil || o.attack {
		t.Errorf("plain check: got attack %v err %v, want false nil", o.attack, err)
	}
}

func TestUsageHasExamplesAndEveryFlag(t *testing.T) {
	var b bytes.Buffer
	usage(&b)
	for _, want := range []string{"Examples:", "sudo ebpfjail --js", "--js-file", "--sh", "--proc", "--no-mitm", "--resolve", "--timeout", "--user", "--cleanup", "--dns-upstream", "ca export", "Exit status"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestPrintErrorIsOneLinePlusHints(t *testing.T) {
	var b bytes.Buffer
	printError(&b, fail(exitFailure, errors.New("load jail object: bad"), "run 'ebpfjail check'"))
	want := "ebpfjail: error: load jail object: bad\nebpfjail: hint: run 'ebpfjail check'\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestParseUpstreamDefaultsToPort53(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.53":           "203.0.113.53:53",
		"203.0.113.53:5353":      "203.0.113.53:5353",
		"2001:db8:eb::53":        "[2001:db8:eb::53]:53",
		"[2001:db8:eb::53]:5353": "[2001:db8:eb::53]:5353",
	} {
		if got, err := parseUpstream(in); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// The help text is part of the interface: a change to it is reviewed as a
// change to testdata/help.golden (go test ./cmd/ebpfjail -update).
func TestHelpMatchesGolden(t *testing.T) {
	var b bytes.Buffer
	usage(&b)
	golden := filepath.Join("testdata", "help.golden")
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("help text differs from %s (run with -update if intended):\ngot:\n%s", golden, b.String())
	}
}

func TestBadTimeoutsAndUnixAddressesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--ask", "--ask-timeout", "0", "--", "true"},
		{"--ask", "--ask-timeout", "-1s", "--", "true"},
		{"--ask-timeout", "5s", "--", "true"}, // without --ask it would do nothing
		{"--allow-unix", "relative.sock", "--", "true"},
		{"--allow-unix", "@", "--", "true"},
		{"--deny-unix", "run/x.sock", "--", "true"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q): got no error, want a usage error", args)
		}
	}
	if _, err := parseArgs([]string{"--allow-unix", "@name", "--deny-unix", "/run/x.sock", "--", "true"}); err != nil {
		t.Errorf("an abstract name and an absolute path: got %v, want them accepted", err)
	}
}
