package supervisor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// weakOptions runs args with --weak's defaults, its records and CA in a
// temporary directory and the command's output in a file.
func weakOptions(t *testing.T, args ...string) (Options, *os.File) {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	warn := func(msg string) { t.Logf("warning: %s", msg) }
	return Options{
		Records: Records{Stdout: io.Discard, Stderr: io.Discard, Warn: warn},
		CADir:   filepath.Join(dir, "ca"),
		Config: Config{
			Command: args, Env: os.Environ(), Stdout: out, Stderr: os.Stderr,
			Warn: warn,
		},
	}, out
}

func TestRunWeakTellsTheCommandTheProxyAndReturnsItsStatus(t *testing.T) {
	o, out := weakOptions(t, "sh", "-c", `echo "$HTTPS_PROXY"; test -s "$SSL_CERT_FILE" && exit 3`)
	status, err := RunWeak(o, testutil.DiscardLogger())
	if err != nil || status != 3 {
		t.Fatalf("RunWeak: status %d, err %v; want 3, nil", status, err)
	}
	b, _ := os.ReadFile(out.Name())
	if got := strings.TrimSpace(string(b)); !strings.HasPrefix(got, "http://127.0.0.1:") {
		t.Errorf("the command's HTTPS_PROXY is %q, want the explicit proxy on loopback", got)
	}
}

func TestRunWeakClassifiesACommandThatCannotStart(t *testing.T) {
	o, _ := weakOptions(t, "/nonexistent/ebpfjail-test-command")
	_, err := RunWeak(o, testutil.DiscardLogger())
	var se *Error
	if !errors.As(err, &se) || se.Step != StepStart || !errors.Is(err, jail.ErrNotFound) {
		t.Errorf("got %v, want a StepStart error wrapping jail.ErrNotFound", err)
	}
}

func TestRunWeakNamesTheRecordThatCannotBeOpened(t *testing.T) {
	o, _ := weakOptions(t, "true")
	o.Records.JSON = filepath.Join(t.TempDir(), "missing", "events.jsonl")
	_, err := RunWeak(o, testutil.DiscardLogger())
	var se *Error
	if !errors.As(err, &se) || se.Step != StepJSONLog {
		t.Errorf("got %v, want a StepJSONLog error", err)
	}
}
