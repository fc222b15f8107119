package rules

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestShell(t *testing.T) {
	needSh(t)
	ctx := context.Background()
	r := typicalRequest()
	direct := scriptFile(t, "rule.sh", "#!/bin/sh\n[ \"$HTTPJAIL_HOST\" = api.example.com ]\n")
	for _, tc := range []struct {
		script string
		want   Verdict
	}{
		{"true", allow()},   // no space: executed directly
		{"false", deny("")}, // likewise
		{direct, allow()},
		{`[ "$EBPFJAIL_COMM" = curl ] && [ "$EBPFJAIL_PORT" = 443 ]`, allow()},
		{`[ "$EBPFJAIL_COMM" = wget ]`, deny("")},
		// Allowing with output keeps it for --test.
		{"echo ok, logged; exit 0", Verdict{Allow: true, Reason: "rule: ok, logged"}},
		{"printf '  spaced out  \\n\\n'; exit 3", deny("spaced out")},
		{"echo to stderr >&2; exit 1", deny("")},
	} {
		if got := newTestShell(tc.script).Evaluate(ctx, r); got != tc.want {
			t.Errorf("--sh %q: got %+v, want %+v", tc.script, got, tc.want)
		}
	}
}

func TestShellStderrLogged(t *testing.T) {
	needSh(t)
	h := &captureHandler{}
	sh, err := NewShell("echo oops >&2; exit 0", ShellOptions{Timeout: testTimeout, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if got := sh.Evaluate(context.Background(), typicalRequest()); got != allow() {
		t.Errorf("got %+v, want allow", got)
	}
	if got, want := strings.Join(h.lines(), "\n"), "DEBUG rule script stderr rule=sh stderr=oops"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestShellSpawnFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	got := newTestShell(missing).Evaluate(context.Background(), typicalRequest())
	if got.Allow || got.DenyMessage != "" || !strings.HasPrefix(got.Reason, "rule error: run script: ") {
		t.Errorf("got %+v, want a deny with no message and the error in Reason", got)
	}
}

func TestShellTimeout(t *testing.T) {
	needSh(t)
	// The background sleep shares stdout; only killing the whole process
	// group lets the evaluation end at the limit.
	marker := filepath.Join(t.TempDir(), "survived")
	sh, err := NewShell("(sleep 2; touch "+marker+") & sleep 10", ShellOptions{Timeout: 200 * time.Millisecond, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := sh.Evaluate(context.Background(), typicalRequest())
	elapsed := time.Since(start)
	if want := (Verdict{Reason: "Script execution timed out"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if elapsed > 10*time.Second {
		t.Errorf("took %v, want about 200ms", elapsed)
	}
	time.Sleep(2500*time.Millisecond - elapsed)
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the script's background child outlived the timeout")
	}
}

func TestShellContextCanceled(t *testing.T) {
	needSh(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := newTestShell("sleep 10").Evaluate(ctx, typicalRequest())
	if got.Allow || got.DenyMessage != "" || got.Reason != "rule error: context canceled" {
		t.Errorf("got %+v", got)
	}
}

func TestShellLeftoverChild(t *testing.T) {
	needSh(t)
	// The script exits at once but its child keeps stdout open; the
	// answer must not wait for the child.
	start := time.Now()
	got := newTestShell("sleep 10 & echo done").Evaluate(context.Background(), typicalRequest())
	if want := (Verdict{Allow: true, Reason: "rule: done"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
}
