package tests

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestPrivilegedFullLogDiskWarnsOnceAndDecisionsStand(t *testing.T) {
	s := newSite(t)
	script := `for i in 1 2 3; do
  curl -sS -o /dev/null -w "allowed %{http_code}\n" http://allowed.test/a$i
  curl -sS -o /dev/null -w "denied %{http_code}\n" http://denied.test/d$i
  curl -sS -o /dev/null -w "allowed-tls %{http_code}\n" https://allowed.test/t$i
done`
	r := s.run(t, allowRule, []string{"--request-log", "/dev/full", "--log-json", "/dev/full"}, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"allowed 200", "denied 403", "allowed-tls 200"} {
		if got := strings.Count(r.stdout, want+"\n"); got != 3 {
			t.Errorf("%q: got %d of 3\n%s", want, got, r)
		}
	}
	s.sawNo(t, "denied.test")
	if got := len(s.h.Requests()); got != 6 {
		t.Errorf("origin requests: got %d, want the 6 allowed: %v", got, s.h.Requests())
	}
	for _, log := range []string{"request log", "JSON log"} {
		if got := strings.Count(r.stderr, "ebpfjail: warning: cannot write the "+log+" (/dev/full): "); got != 1 {
			t.Errorf("warnings about the %s while running: got %d, want exactly 1\n%s", log, got, r.stderr)
		}
		contains(t, "warning at exit", r.stderr, "ebpfjail: warning: the "+log+" is incomplete: ")
	}
	contains(t, "the reason", r.stderr, "no space left on device")
	noJailsLeft(t)
}

// cutOrigin serves, on the site's host, responses that stop half way:
//
//	/close    Content-Length 4 MiB, 1 MiB sent, then the connection closed
//	/reset    the same, ended with a reset
//	/chunked  1 MiB of a chunked body, then closed without the last chunk
//	/die      1 MiB of 4, then the whole server goes (listener included)
//
// on HTTP port 8081 and HTTPS port 8444 (HTTP/1.1; the client side is the
// MITM's, h2 where curl offers it).
func cutOrigin(t *testing.T, s *site) {
	t.Helper()
	const sent = 1 << 20
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var servers []*http.Server
	var mu sync.Mutex
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/close" && r.URL.Path != "/reset" && r.URL.Path != "/chunked" && r.URL.Path != "/die" {
			io.WriteString(w, "whole\n")
			return
		}
		if r.URL.Path != "/chunked" {
			w.Header().Set("Content-Length", strconv.Itoa(4*sent))
		}
		for i := 0; i < sent; i += len(chunk) {
			w.Write(chunk)
		}
		w.(http.Flusher).Flush()
		if r.URL.Path == "/die" {
			mu.Lock()
			for _, srv := range servers {
				srv.Close()
			}
			mu.Unlock()
			return
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if r.URL.Path == "/reset" {
			raw := c
			if tc, ok := c.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			raw.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	})
	for _, tc := range []struct {
		port int
		tls  bool
	}{{8081, false}, {8444, true}} {
		ln := s.h.Listen(t, "tcp", "[::]:"+strconv.Itoa(tc.port))
		srv := &http.Server{Handler: handler}
		if tc.tls {
			srv.TLSConfig = tlsConfigFor(s.ca.Leaf(t, "allowed.test"))
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		mu.Lock()
		servers = append(servers, srv)
		mu.Unlock()
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
}

func TestPrivilegedOriginVanishingMidStreamIsAnErrorNotASuccess(t *testing.T) {
	s := newSite(t)
	cutOrigin(t, s)
	// Each fetch prints its status, the bytes it got and curl's exit code
	// (18: body shorter than announced; 56: receive failure; 92: HTTP/2
	// stream reset; 28 would be a hang cut by -m).
	script := `fetch() { curl -sS -m 20 -o /dev/null -w "$1 %{http_code} %{size_download}" $2; echo " exit $?"; }
for p in close reset chunked; do
  fetch $p http://allowed.test:8081/$p
  fetch tls-$p https://allowed.test:8444/$p
  fetch tls1-$p "--http1.1 https://allowed.test:8444/$p"
done
fetch next http://allowed.test/
fetch die http://allowed.test:8081/die
fetch after-die http://allowed.test:8081/
fetch tls-after-die https://allowed.test:8444/
fetch still-serving https://allowed.test/`
	r := s.run(t, allowRule, nil, "sh", "-c", script)
	got := map[string][3]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 {
			got[f[0]] = [3]string{f[1], f[2], f[4]}
		}
	}
	for _, name := range []string{"close", "tls-close", "tls1-close", "reset", "tls-reset", "tls1-reset", "chunked", "tls-chunked", "tls1-chunked", "die"} {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: no result\n%s", name, r)
			continue
		}
		size, _ := strconv.Atoi(g[1])
		if g[2] == "0" || g[2] == "28" || size >= 4<<20 {
			t.Errorf("%s: got status %s, %s bytes, curl exit %s; want a failed transfer (not 0, not the 28 of a hang) short of 4 MiB", name, g[0], g[1], g[2])
		}
	}
	for name, want := range map[string][3]string{
		"next":          {"200", "20", "0"},
		"after-die":     {"502", "", "0"},
		"tls-after-die": {"502", "", "0"},
		"still-serving": {"200", "20", "0"},
	} {
		g := got[name]
		if g[0] != want[0] || g[2] != want[2] || (want[1] != "" && g[1] != want[1]) {
			t.Errorf("%s: got status %s, %s bytes, exit %s; want %s, exit %s", name, g[0], g[1], g[2], want[0], want[2])
		}
	}
	// Logged as failures, with the origin's side of the story.
	for _, u := range []string{"http://allowed.test:8081/close", "http://allowed.test:8081/reset", "https://allowed.test:8444/chunked", "http://allowed.test:8081/die"} {
		contains(t, "log", r.stderr, "ebpfjail: failed GET "+u+" 200 (curl pid ")
	}
	contains(t, "log reason", r.stderr, "upstream error: response body cut short: ")
	if t.Failed() {
		t.Logf("%s", r)
	}
	noJailsLeft(t)
}

func TestPrivilegedCommandExitingWithRequestsInFlightEndsEverything(t *testing.T) {
	s := newSite(t)
	dir := sharedDir(t)
	// The origin answers /hang with a first line, then holds the response
	// open until the request goes away, and notes that it did.
	var arrived, cancelled atomic.Int32
	ln := s.h.Listen(t, "tcp", "[::]:8082")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		io.WriteString(w, "first line\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		cancelled.Add(1)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	const n = 3
	go func() {
		// The command exits once all its requests are in flight.
		for arrived.Load() < n {
			time.Sleep(20 * time.Millisecond)
		}
		os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	}()
	script := fmt.Sprintf(`for i in $(seq %d); do
  curl -sS -o %s/out$i http://allowed.test:8082/hang$i 2>/dev/null &
  echo $! >> %s/pids
done
sleep 1000 &
echo $! >> %s/pids
while [ ! -e %s/go ]; do sleep 0.05; done
exit 3`, n, dir, dir, dir, dir)
	r := jail(t, runOpts{timeout: 30 * time.Second, env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}},
		"-v", "--user", "nobody", "--js", allowRule, "--resolve", "allowed.test:"+s.h.IPv4.String(), "--", "sh", "-c", script)
	pids := readFile(filepath.Join(dir, "pids"))
	defer killPIDs(pids)
	if r.code != 3 {
		t.Errorf("exit status: got %d, want the command's 3\n%s", r.code, r)
	}
	if got := arrived.Load(); got != n {
		t.Errorf("requests at the origin: got %d, want %d", got, n)
	}
	if got := len(strings.Fields(pids)); got != n+1 {
		t.Errorf("background processes recorded: got %d, want %d", got, n+1)
	}
	for _, f := range strings.Fields(pids) {
		pid, _ := strconv.Atoi(f)
		if !gone(pid) {
			t.Errorf("process %d the command left behind is still running after ebpfjail exited", pid)
		}
	}
	// The requests were torn down, not left hanging at the origin.
	waitFor(t, "the origin to see the requests go", func() bool { return cancelled.Load() == n })
	noJailsLeft(t)
}

func TestPrivilegedKilledUnderLoadFailsClosedAndCleanupRestores(t *testing.T) {
	testutil.RequireRoot(t)
	// The jail of the killed supervisor must wait for this test's --cleanup.
	testutil.SweepExclusive(t)
	h := testutil.NewHost(t)
	originSaw := slowOrigin(t, h)

	client := buildTestdata(t, "killload")
	s := startSupervised(t, bin, "--user", "nobody", "--js", "r.host === '"+h.IPv4.String()+"'", "--",
		client, h.IPv4.String()+":8083")
	var clientPID int
	fmt.Sscanf(s.expect(t, "pid ", 30*time.Second), "pid %d", &clientPID)
	t.Cleanup(func() { killPIDs(strconv.Itoa(clientPID)) })
	s.expect(t, "loaded", 60*time.Second)
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", clientPID))
	record := "/run/ebpfjail/jails/" + filepath.Base(strings.TrimSpace(string(cg))) + ".json"
	// Any ebpfjail that starts sweeps the jails of dead supervisors (by
	// design): another test run holds off (SweepExclusive above), but one
	// started by hand on this host would end this jail before the test
	// looks at it. Say so rather than blame ebpfjail.
	requireJail := func() {
		t.Helper()
		if running(clientPID) {
			return
		}
		if _, err := os.Stat(record); err != nil {
			t.Fatalf("the jailed client is gone, and so is its jail record (%v): another ebpfjail started on this host meanwhile and swept the jail of the killed supervisor; re-run", err)
		}
		t.Fatalf("the jailed client (pid %d) died with ebpfjail; want it alive, fenced in, until --cleanup", clientPID)
	}

	s.cmd.Process.Signal(syscall.SIGKILL)
	// Process.Wait, not Cmd.Wait, which would close the pipes the command
	// (still running) writes to.
	s.cmd.Process.Wait()
	// Bytes ebpfjail wrote just before it died may still be on the wire.
	time.Sleep(300 * time.Millisecond)
	atKill := len(originSaw())
	requireJail()
	s.send(t, "killed")
	var line string
	select {
	case line = <-s.stdout:
		if line == "" {
			time.Sleep(100 * time.Millisecond) // let it be reaped
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no report from the client 60s after the kill")
	}
	requireJail()
	if !strings.HasPrefix(line, "after ") {
		t.Fatalf("client said %q, want after ...\nstderr:\n%s", line, s.stderr())
	}
	t.Log(line)
	checkAfterKill(t, line, originSaw(), atKill)
	requireJail()

	cleanupRemoves(t, "the jailed client", clientPID)
	noJailsLeft(t)
}

// slowOrigin serves h's port 8083: /slow answers with a second's worth of
// body in pieces, anything else with "ok". It returns what the origin was
// asked for so far.
func slowOrigin(t *testing.T, h *testutil.Host) (saw func() []string) {
	var mu sync.Mutex
	var seen []string
	ln := h.Listen(t, "tcp", "[::]:8083")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		if r.URL.Path != "/slow" {
			io.WriteString(w, "ok\n")
			return
		}
		// A second's worth of body in pieces: always some in flight.
		piece := bytes.Repeat([]byte("s"), 1000)
		w.Header().Set("Content-Length", strconv.Itoa(20*len(piece)))
		for range 20 {
			if _, err := w.Write(piece); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// checkAfterKill checks the killload client's report (line) of what it got
// after the supervisor was killed, and that the origin got nothing new:
// got are its requests now, atKill how many there were at the kill.
func checkAfterKill(t *testing.T, line string, got []string, atKill int) {
	t.Helper()
	var newOK, newFail, heldOK, heldFail, inOK, inFail int
	if _, err := fmt.Sscanf(line, "after new-ok=%d new-fail=%d held-ok=%d held-fail=%d inflight-ok=%d inflight-fail=%d",
		&newOK, &newFail, &heldOK, &heldFail, &inOK, &inFail); err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	if newOK != 0 || heldOK != 0 || inOK != 0 {
		t.Errorf("after the kill: %d new, %d held and %d in-flight requests succeeded; want none", newOK, heldOK, inOK)
	}
	if newFail == 0 || heldFail != 50 {
		t.Errorf("after the kill: %d new and %d held attempts failed; want some and 50 (else the test proves nothing)", newFail, heldFail)
	}
	for _, u := range got {
		if strings.HasPrefix(u, "/after") {
			t.Errorf("the origin received a request made after the kill: %s", u)
		}
	}
	if len(got) != atKill {
		t.Errorf("origin requests: %d when ebpfjail died, %d later; want no new ones: %v", atKill, len(got), got[atKill:])
	}
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(string(b[i:]), ") Z")
}
