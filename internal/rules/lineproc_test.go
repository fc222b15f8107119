package rules

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestLineProcessStartFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, program := range []string{missing, "", "   "} {
		if _, err := NewLineProcess(program, ProcOptions{}); err == nil || !strings.HasPrefix(err.Error(), "start rule program: ") {
			t.Errorf("NewLineProcess(%q) error = %v, want start rule program: ...", program, err)
		}
	}
}

func TestLineProcessState(t *testing.T) {
	needSh(t)
	// httpjail's state test: the program keeps a counter, and the Nth
	// request allows only N.com.
	script := scriptFile(t, "count.sh", `#!/bin/sh
n=0
while IFS= read -r line; do
	n=$((n+1))
	case "$line" in *"\"host\":\"$n.com\""*) echo true ;; *) echo false ;; esac
done
`)
	p := newTestProc(t, script)
	for n := 1; n <= 22; n++ {
		host := fmt.Sprintf("%d.com", n)
		if n%5 == 0 {
			host = "wrong.com"
		}
		want := n%5 != 0
		if got := p.Evaluate(context.Background(), &Request{Host: host}); got.Allow != want {
			t.Errorf("request %d (%s): got %+v, want allow %v", n, host, got, want)
		}
	}
	if p.starts != 1 {
		t.Errorf("started %d times, want 1", p.starts)
	}
}

func TestLineProcessRestart(t *testing.T) {
	needSh(t)
	for _, tc := range []struct {
		name   string
		script string
	}{
		// httpjail's test: a program that exits after every answer is
		// restarted transparently.
		{"exits after each answer", "read -r line; echo true"},
		// Answers once, then dies in the middle of the next request
		// without answering: the request is retried on a fresh process.
		{"crashes mid-request", "read -r line; echo true; read -r line; exit 1"},
		// An empty line is garbage: kill, restart, retry.
		{"empty answer", `while IFS= read -r line; do if [ -e "$STATE" ]; then rm "$STATE"; echo; else touch "$STATE"; echo true; fi; done`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			script := scriptFile(t, "rule.sh", "#!/bin/sh\n"+tc.script+"\n")
			p := newTestProc(t, script, "STATE="+state)
			for i := range 6 {
				if got := p.Evaluate(context.Background(), typicalRequest()); got != allow() {
					t.Errorf("request %d: got %+v, want allow", i, got)
				}
			}
			t.Logf("program started %d times for 6 requests", p.starts)
			if p.starts < 2 {
				t.Errorf("started %d times; want restarts", p.starts)
			}
		})
	}
}

func TestLineProcessFails(t *testing.T) {
	needSh(t)
	for _, tc := range []struct {
		name, script, reason string
	}{
		{"always exits", "exit 0", "program evaluation failed: "},
		{"always empty", "while read -r line; do echo '   '; done", "program evaluation failed: empty answer line"},
		{"never answers", "while read -r line; do :; done", "program evaluation failed: read answer: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewLineProcess(scriptFile(t, "rule.sh", "#!/bin/sh\n"+tc.script+"\n"), ProcOptions{Timeout: 200 * time.Millisecond, Logger: testutil.DiscardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			start := time.Now()
			got := p.Evaluate(context.Background(), typicalRequest())
			if got.Allow || got.DenyMessage != "" || !strings.HasPrefix(got.Reason, tc.reason) {
				t.Errorf("got %+v, want a deny with Reason %q...", got, tc.reason)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("took %v; want two attempts of at most 200ms", elapsed)
			}
			if p.starts != 2 {
				t.Errorf("started %d times, want 2 (the first try and one retry)", p.starts)
			}
		})
	}
}

func TestLineProcessContext(t *testing.T) {
	needSh(t)
	p := newTestProc(t, scriptFile(t, "rule.sh", "#!/bin/sh\nwhile read -r line; do sleep 10; echo true; done\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := p.Evaluate(ctx, typicalRequest())
	if got.Allow || !strings.HasPrefix(got.Reason, "program evaluation failed: ") {
		t.Errorf("got %+v, want a failed evaluation", got)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v; want the context's 100ms", elapsed)
	}
}

func TestLineProcessClose(t *testing.T) {
	needSh(t)
	p, err := NewLineProcess(scriptFile(t, "rule.sh", "#!/bin/sh\nwhile read -r line; do echo true; done\n"), ProcOptions{Timeout: testTimeout, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Evaluate(context.Background(), typicalRequest()); got != allow() {
		t.Errorf("got %+v, want allow", got)
	}
	c := p.cur
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !c.exited() {
		t.Errorf("the program still runs after Close")
	}
	if got := p.Evaluate(context.Background(), typicalRequest()); got.Allow || got.Reason != "rule error: engine closed" {
		t.Errorf("after Close: got %+v", got)
	}
}
