package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// childVar makes the test binary, run as the jailed command, do one thing
// (see TestMain) instead of running the tests.
const childVar = "SUPERVISOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if what := os.Getenv(childVar); what != "" {
		os.Exit(child(what))
	}
	os.Exit(m.Run())
}

// child is the jailed command: "cgroup" prints its cgroup, "dial ADDR"
// sends a request to ADDR and prints the status line it gets, "sleep"
// says "ready" and sleeps.
func child(what string) int {
	verb, arg, _ := strings.Cut(what, " ")
	switch verb {
	case "cgroup":
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return 1
		}
		os.Stdout.Write(b)
		return 0
	case "dial":
		c, err := net.DialTimeout("tcp", arg, 5*time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /from-the-jail HTTP/1.1\r\nHost: outside.test\r\nConnection: close\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		return 0
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	}
	return 2
}

// run is one jail of a test, with what it wrote and emitted.
type run struct {
	c      Config
	stdout *os.File // what the command wrote, once Run returned
	mu     sync.Mutex
	events []event.Event
	done   []int
}

// newRun makes a Config that runs the test binary as root with
// SUPERVISOR_TEST_CHILD=what, under rule.
func newRun(t *testing.T, what string, rule rules.Engine) *run {
	t.Helper()
	testutil.RequireRoot(t)
	// Run sweeps the jails of dead supervisors: not while another test
	// run keeps one for its own --cleanup.
	t.Cleanup(testutil.SweepShared(t))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tlsca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	r := &run{stdout: out}
	r.c = Config{
		Command: []string{self, "-test.run=^$"},
		Env:     append(os.Environ(), childVar+"="+what),
		User:    &jail.User{Name: "root", Home: "/root"},
		Stdout:  out, Stderr: os.Stderr,
		Rules: rule, CA: ca,
		Event:   func(e event.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() },
		Done:    func(status int) { r.done = append(r.done, status) },
		FakeDNS: true,
		Warn:    func(msg string) { t.Logf("warning: %s", msg) },
	}
	return r
}

func (r *run) output(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(r.stdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// start runs r's jail with a supervisor of its own.
func (r *run) start(t *testing.T) (int, error) {
	t.Helper()
	s, err := Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Run(r.c, testLogger(t))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestPrivilegedRunReturnsTheCommandsStatusAndLeavesNothingOfItsJail(t *testing.T) {
	r := newRun(t, "cgroup", rules.DenyAll())
	status, err := r.start(t)
	if err != nil || status != 0 {
		t.Fatalf("Run: status %d, err %v; want 0, nil", status, err)
	}
	if len(r.done) != 1 || r.done[0] != 0 {
		t.Errorf("Done got %v, want [0]", r.done)
	}
	// 0::/ebpfjail/<id> (the cgroup2 line): the command ran in a jail of
	// its own.
	var cg string
	for _, line := range strings.Split(r.output(t), "\n") {
		if strings.HasPrefix(line, "0::") {
			cg = line
		}
	}
	id := filepath.Base(cg)
	if !strings.HasPrefix(cg, "0::/ebpfjail/") || id == "" {
		t.Fatalf("the command's cgroup is %q, want 0::/ebpfjail/<id>", cg)
	}
	paths, err := jail.DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(paths.Cgroup2, "ebpfjail", id),
		filepath.Join(paths.BPFFS, "ebpfjail", id),
		filepath.Join(paths.State, id+".json"),
	} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left after Run (stat: %v)", p, err)
		}
	}
	exec := false
	for _, e := range r.events {
		exec = exec || e.Type == event.TypeExec
	}
	t.Logf("exec event seen: %v (missing only without the exec hook)", exec)
}

func TestPrivilegedRunSteersTheCommandsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached sync.WaitGroup
	got := make(chan string, 1)
	reached.Add(1)
	go func() {
		defer reached.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	}()
	r := newRun(t, "dial "+ln.Addr().String(), rules.DenyAll())
	status, err := r.start(t)
	if err != nil || status != 0 {
		t.Fatalf("Run: status %d, err %v; want 0, nil (output %q)", status, err, r.output(t))
	}
	if out := r.output(t); !strings.HasPrefix(out, "HTTP/1.1 403") {
		t.Errorf("the command got %q, want ebpfjail's 403", out)
	}
	ln.Close()
	reached.Wait()
	select {
	case line := <-got:
		t.Errorf("the listener outside the jail got %q: the connection was not steered", line)
	default:
	}
	denied := false
	for _, e := range r.events {
		denied = denied || e.Type == event.TypeRequest && e.Verdict == event.Deny && strings.Contains(e.URL, "/from-the-jail")
	}
	if !denied {
		t.Errorf("no deny event for the request among %d events", len(r.events))
	}
}

func TestPrivilegedRunClassifiesACommandThatCannotStart(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		command string
		want    error
	}{
		{"/nonexistent/ebpfjail-test-command", jail.ErrNotFound},
		{notExec, jail.ErrNotExecutable},
	} {
		r := newRun(t, "cgroup", rules.DenyAll())
		r.c.Command = []string{tc.command}
		_, err := r.start(t)
		var se *Error
		if !errors.As(err, &se) || se.Step != StepStart || !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want a StepStart error wrapping %v", tc.command, err, tc.want)
		}
		if len(r.done) != 0 {
			t.Errorf("%s: Done called for a command that never ran", tc.command)
		}
	}
}

func TestPrivilegedRunStopsTheCommandAtTheTimeout(t *testing.T) {
	r := newRun(t, "sleep", rules.DenyAll())
	r.c.Timeout = 300 * time.Millisecond
	start := time.Now()
	status, err := r.start(t)
	if err != nil || status != ExitTimeout {
		t.Fatalf("Run: status %d, err %v; want %d, nil", status, err, ExitTimeout)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v after a 300ms timeout", d)
	}
}

func TestPrivilegedRunForwardsASignalToTheCommand(t *testing.T) {
	r := newRun(t, "sleep", rules.DenyAll())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	r.c.Stdout = pw
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		status, err := r.start(t)
		done <- result{status, err}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	pw.Close()
	if err != nil || line != "ready\n" {
		t.Fatalf("the command said %q, %v; want ready", line, err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case res := <-done:
		if res.err != nil || res.status != 128+int(syscall.SIGTERM) {
			t.Errorf("Run: status %d, err %v; want %d, nil", res.status, res.err, 128+int(syscall.SIGTERM))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
}

func TestWithEnvReplacesKeys(t *testing.T) {
	got := WithEnv([]string{"A=1", "B=2", "C=3"}, []string{"B=x", "D=4"})
	if want := "A=1 C=3 B=x D=4"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAbstractAllowed(t *testing.T) {
	got := abstractAllowed([]string{"/run/a.sock", "@name", "\x00raw"})
	if len(got) != 2 || got[0] != "@name" {
		t.Errorf("got %q, want [@name \\x00raw]", got)
	}
}
