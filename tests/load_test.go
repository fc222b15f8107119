package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// buildTestdata builds tests/testdata/NAME into a directory the jailed
// user can read.
func buildTestdata(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(sharedDir(t), name)
	if b, err := exec.Command("go", "build", "-o", out, "./testdata/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// supervised is an ebpfjail run the test drives step by step: it writes
// to the command's stdin and reads its stdout and ebpfjail's stderr line by
// line while the jail runs.
type supervised struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout chan string
	stats  chan string
	mu     sync.Mutex
	errLog strings.Builder
}

// startSupervised starts argv (ebpfjail, or a shell that execs it, so the
// pid is ebpfjail's); whatever happens, the test ends it by pid and sweeps
// its jail.
func startSupervised(t *testing.T, argv ...string) *supervised {
	t.Helper()
	s := &supervised{cmd: exec.Command(argv[0], argv[1:]...), stdout: make(chan string, 100), stats: make(chan string, 10)}
	testutil.SweepShared(t)
	s.cmd.Env = append(os.Environ(), owner(t))
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, _ := s.cmd.StdoutPipe()
	stderr, _ := s.cmd.StderrPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		ebpfjail(t, "--cleanup").Run()
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.stdout <- sc.Text()
		}
		close(s.stdout)
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ebpfjail: stats: ") {
				s.stats <- line
			}
			s.mu.Lock()
			if s.errLog.Len() < 64<<10 {
				s.errLog.WriteString(line + "\n")
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *supervised) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLog.String()
}

// expect waits for the command's next stdout line and fails unless it
// starts with prefix.
func (s *supervised) expect(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-s.stdout:
		if !ok {
			t.Fatalf("waiting for %q: the command's output ended\nstderr:\n%s", prefix, s.stderr())
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("command said %q, want %q...\nstderr:\n%s", line, prefix, s.stderr())
		}
		return line
	case <-time.After(within):
		t.Fatalf("no %q from the command within %v\nstderr:\n%s", prefix, within, s.stderr())
	}
	return ""
}

func (s *supervised) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		t.Fatalf("write to the command: %v", err)
	}
}

// stats is ebpfjail's SIGUSR1 line, parsed.
type stats struct {
	goroutines, fds, active int
	heap, rss               int64
}

var statsRE = regexp.MustCompile(`goroutines=(\d+) open_fds=(\d+) heap_inuse_bytes=(\d+) rss_bytes=(\d+) active_connections=(\d+)`)

// askStats signals ebpfjail and parses the stats line it prints.
func (s *supervised) askStats(t *testing.T) stats {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case line := <-s.stats:
		m := statsRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("stats line %q does not match %v", line, statsRE)
		}
		atoi := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
		return stats{goroutines: int(atoi(m[1])), fds: int(atoi(m[2])), heap: atoi(m[3]), rss: atoi(m[4]), active: int(atoi(m[5]))}
	case <-time.After(10 * time.Second):
		t.Fatalf("no stats line 10s after SIGUSR1\nstderr:\n%s", s.stderr())
	}
	return stats{}
}

// countFDs counts pid's open descriptors from outside.
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("count descriptors of %d: %v", pid, err)
	}
	return len(ents)
}

// softFileLimit reads pid's soft RLIMIT_NOFILE.
func softFileLimit(t *testing.T, pid int) uint64 {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		t.Fatalf("read descriptor limit of %d: %v", pid, err)
	}
	return lim.Cur
}

// serveHeld serves "held" on h's port 80. The origin closes idle
// connections after a second, so ebpfjail's pool of idle upstream
// connections empties too and what is left after the load can be compared
// with the baseline exactly.
func serveHeld(t *testing.T, h *testutil.Host) {
	ln := h.Listen(t, "tcp", "[::]:80")
	origin := &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "held\n") }),
		IdleTimeout: time.Second,
	}
	go origin.Serve(ln)
	t.Cleanup(func() { origin.Close() })
}

// waitBaseline waits until ebpfjail (pid) is back to its baseline of
// descriptors and goroutines, with no active connection.
func waitBaseline(t *testing.T, s *supervised, pid, fds0 int, st0 stats) {
	t.Helper()
	maxFDs, maxG := fds0, st0.goroutines
	var fds2 int
	var st2 stats
	deadline := time.Now().Add(30 * time.Second)
	for {
		fds2, st2 = countFDs(t, pid), s.askStats(t)
		if st2.active == 0 && fds2 <= maxFDs && st2.goroutines <= maxG {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing: %d descriptors, %d goroutines, %d active connections; want at most the baseline %d, %d and 0",
				fds2, st2.goroutines, st2.active, maxFDs, maxG)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after closing: %d descriptors (baseline %d), %d goroutines (baseline %d)", fds2, fds0, st2.goroutines, st0.goroutines)
}

// exit tells the command to exit and waits for ebpfjail to exit with it.
func (s *supervised) exit(t *testing.T) {
	t.Helper()
	s.send(t, "exit")
	s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ebpfjail: %v\nstderr:\n%s", err, s.stderr())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ebpfjail did not exit after the command\nstderr:\n%s", s.stderr())
	}
}

func TestPrivilegedTenThousandConcurrentConnectionsLeakNothing(t *testing.T) {
	testutil.RequireRoot(t)
	const n = 10000
	h := testutil.NewHost(t)
	serveHeld(t, h)
	client := buildTestdata(t, "holdconns")
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < n+100 {
		t.Skipf("hard descriptor limit %d: the jailed client cannot hold %d connections", lim.Max, n)
	}
	rule := fmt.Sprintf("r.host === '%s' || r.host === '%s'", h.IPv4, h.IPv6)
	// ebpfjail gets a soft limit of its own (4321): the command must see
	// exactly what ebpfjail was given, not what ebpfjail raised itself to.
	s := startSupervised(t, "sh", "-c", `ulimit -Sn 4321 && exec "$@"`, "sh",
		bin, "--user", "nobody", "--js", rule, "--",
		"sh", "-c", `echo "limits $(ulimit -Sn) $(ulimit -Hn)"; exec "$@"`, "sh",
		client, strconv.Itoa(n), h.IPv4.String()+":80", "["+h.IPv6.String()+"]:80")
	pid := s.cmd.Process.Pid

	if got, want := s.expect(t, "limits", 30*time.Second), fmt.Sprintf("limits 4321 %d", lim.Max); got != want {
		t.Errorf("the command's descriptor limits: got %q, want %q (what ebpfjail was started with)", got, want)
	}
	s.expect(t, "ready", 30*time.Second)
	// Raised as far as this host lets root (the hard limit needs
	// CAP_SYS_RESOURCE, which some containers drop): at least enough for
	// the held connections (one descriptor each; the upstream side of
	// plain HTTP is pooled).
	if got := softFileLimit(t, pid); got <= 4321 || got < n+100 {
		t.Errorf("ebpfjail's soft descriptor limit: got %d, want it raised from 4321 to at least %d", got, n+100)
	}
	fds0, st0 := countFDs(t, pid), s.askStats(t)

	s.send(t, "go")
	t.Log(s.expect(t, "open", 3*time.Minute))
	fds1, st1 := countFDs(t, pid), s.askStats(t)
	t.Logf("while open: %d descriptors (baseline %d), %+v (baseline %+v)", fds1, fds0, st1, st0)
	if st1.active < n {
		t.Errorf("active connections in ebpfjail: got %d, want at least %d at once", st1.active, n)
	}
	if fds1-fds0 < n {
		t.Errorf("descriptors: got %d more than the baseline %d, want at least %d (one per held connection)", fds1-fds0, fds0, n)
	}
	perConn := float64(st1.rss-st0.rss) / n
	t.Logf("memory per connection: %.1f KiB of RSS (%.1f MiB -> %.1f MiB), %.1f KiB of heap in use",
		perConn/1024, float64(st0.rss)/(1<<20), float64(st1.rss)/(1<<20), float64(st1.heap-st0.heap)/n/1024)

	s.send(t, "close")
	s.expect(t, "closed", time.Minute)
	waitBaseline(t, s, pid, fds0, st0)

	s.exit(t)
	noJailsLeft(t)
}
