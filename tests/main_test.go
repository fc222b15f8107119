package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

var bin string

func TestMain(m *testing.M) {
	bin = os.Getenv("EBPFJAIL_BIN")
	// Every ebpfjail this binary starts is its own; see owner.
	os.Setenv(ownerVar, ownedRun())
	if err := startWatch(); err != nil {
		fmt.Fprintf(os.Stderr, "watch %s: %v\n", stateDir, err)
		os.Exit(1)
	}
	cleanup := func() {}
	if bin == "" {
		dir, err := os.MkdirTemp("", "ebpfjail-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		bin = filepath.Join(dir, "ebpfjail")
		out, err := exec.Command("go", "build", "-o", bin, "../cmd/ebpfjail").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build ebpfjail: %v\n%s", err, out)
			cleanup()
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// result is one finished ebpfjail run.
type result struct {
	stdout, stderr string
	code           int
	pid            int // ebpfjail's (or the wrapper's that setup put in its place)
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runOpts tune one run.
type runOpts struct {
	env     []string // added to the test's environment
	timeout time.Duration
	setup   func(*exec.Cmd)
}

// jail runs the binary with args, marked as t's, and waits (bounded) for
// it. It holds the shared sweep lock while the binary runs (see
// testutil.SweepShared).
func jail(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	defer testutil.SweepShared(t)()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), owner(t)), o.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if o.setup != nil {
		o.setup(cmd)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if cmd.Process != nil {
		r.pid = cmd.Process.Pid
	}
	if ctx.Err() != nil {
		t.Fatalf("ebpfjail %v did not finish in %v\n%s", args, o.timeout, r)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("ebpfjail %v died of %v (%v)\n%s", args, ws.Signal(), err, r)
	}
	return r
}

// sharedDir is a directory the jailed user (nobody) can read and write.
func sharedDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ebpfjail-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o777)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// requireTool skips when a client the test drives is not installed.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func contains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: got %q, want it to contain %q", what, got, want)
	}
}

// killPIDs kills the listed pids (one per line): processes a failed test
// started and must not leave running.
func killPIDs(list string) {
	for _, f := range strings.Fields(list) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// python returns a python3 the jailed user can run (a pyenv shim under
// /root is not).
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o001 != 0 {
			return p
		}
	}
	t.Skip("no python3 that the jailed user can run (install Debian's python3)")
	return ""
}

// readEvents parses a --log-json file; a line that is not JSON fails the
// test.
func readEvents(t *testing.T, path string) []event.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	var out []event.Event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var e event.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event line is not JSON: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// eventsPath is a fresh --log-json file for one run.
func eventsPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "events.jsonl")
}
