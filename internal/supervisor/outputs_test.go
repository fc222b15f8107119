package supervisor

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestQuietTerminalOnlyOnATerminalWithoutV(t *testing.T) {
	for _, tc := range []struct {
		terminal bool
		verbose  int
		want     bool
	}{
		{true, 0, true},
		{true, 1, false}, // -v asks for the lines
		{true, 2, false},
		{false, 0, false}, // a file, a pipe, CI: a line per problem
		{false, 1, false},
	} {
		if got := QuietTerminal(tc.terminal, tc.verbose); got != tc.want {
			t.Errorf("QuietTerminal(%v, %d) = %v, want %v", tc.terminal, tc.verbose, got, tc.want)
		}
	}
}

func TestIsTerminalIsFalseForAFileAndAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(w) || IsTerminal(f) {
		t.Error("a pipe or a file taken for a terminal")
	}
}

// emitDenials sends two denied requests and a refused connection.
func emitDenials(out *Outputs) {
	out.Emit(event.Event{V: event.Version, Type: event.TypeRequest, Verdict: event.Deny, Method: "GET", URL: "https://x.test/", Reason: "rule", Comm: "curl", PID: 5})
	out.Emit(event.Event{V: event.Version, Type: event.TypeRequest, Verdict: event.Deny, Method: "GET", URL: "https://y.test/", Reason: "rule", Comm: "curl", PID: 5})
	out.Emit(event.Event{V: event.Version, Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", Comm: "nc", PID: 6})
}

func TestQuietOutputsSayOneLineAtFinish(t *testing.T) {
	var stderr bytes.Buffer
	out, err := OpenOutputs(Records{Quiet: true, Stderr: &stderr, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	emitDenials(out)
	if stderr.Len() != 0 {
		t.Fatalf("quiet outputs wrote while the command ran: %q", stderr.String())
	}
	out.Finish(0)
	got := stderr.String()
	if !strings.HasPrefix(got, "ebpfjail: 2 requests denied, 1 connection refused (") || strings.Count(got, "\n") != 1 {
		t.Errorf("summary = %q", got)
	}
}

func TestQuietOutputsSayNothingWhenNothingWentWrong(t *testing.T) {
	var stderr bytes.Buffer
	out, err := OpenOutputs(Records{Quiet: true, Stderr: &stderr, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	out.Emit(event.Event{V: event.Version, Type: event.TypeRequest, Verdict: event.Allow, Status: 200})
	out.Finish(0)
	if stderr.Len() != 0 {
		t.Errorf("wrote %q", stderr.String())
	}
}

func TestOutputsNotQuietKeepALinePerDenialAndNoSummary(t *testing.T) {
	var stderr bytes.Buffer
	out, err := OpenOutputs(Records{Stderr: &stderr, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	emitDenials(out)
	out.Finish(0)
	got := stderr.String()
	if strings.Count(got, "ebpfjail: denied GET") != 2 || !strings.Contains(got, "ebpfjail: blocked") || strings.Contains(got, "requests denied") {
		t.Errorf("stderr = %q", got)
	}
}
