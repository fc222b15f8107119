package tests

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// memKiB reads a Vm* line of /proc/PID/status (VmRSS, VmHWM) in KiB.
func memKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read status of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuTicks is the user plus system CPU time pid has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read stat of %d: %v", pid, err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// Fields 14 and 15 of the file: 12 and 13 after the comm.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// settleRSS waits (up to 30s) for pid's RSS to come back under limit KiB
// and returns the last reading.
func settleRSS(t *testing.T, pid int, limit int64) int64 {
	t.Helper()
	var rss int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if rss = memKiB(t, pid, "VmRSS"); rss <= limit {
			break
		}
	}
	return rss
}

// exhaustMiB is the bound on ebpfjail's peak RSS under each exhaustion
// load. Measured on a 2-CPU test machine: 40-100 MiB with the bounds;
// without them 680 MiB (header flood, HTTP/1.1), 410 MiB (HTTP/2) and
// 210-260 MiB (held streams).
const exhaustMiB = 150

// backMiB is how far above its RSS before the load ebpfjail may stay once
// the load is gone (the Go runtime returns freed memory gradually).
const backMiB = 40

func TestPrivilegedRegexRuleIsCutAtTheTimeLimitAndFailsClosed(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 80)
	client := buildTestdata(t, "exhaust")
	// A deny list written as a regular expression: everything is allowed
	// except what the expression matches. On a long path it backtracks for
	// many seconds; a regular expression engine that gives up and reports
	// "no match" would turn the rule into an allow.
	const timeout = time.Second
	rule := fmt.Sprintf(`r.host === '%s' && !/^\/api\/(?!admin)([\w-]+\/?)+$/.test(r.path)`, h.IPv4)
	s := startSupervised(t, bin, "--user", "nobody", "--js-timeout", timeout.String(), "--js", rule, "--", client)
	pid := s.cmd.Process.Pid
	s.expect(t, "ready", 30*time.Second)
	base := "http://" + h.IPv4.String()

	start := time.Now()
	s.send(t, "get "+base+"/api/"+strings.Repeat("a-", 30)+"!")
	got := s.expect(t, "", 30*time.Second)
	took := time.Since(start)
	t.Logf("backtracking path: %q after %v", got, took)
	if got != "status 403" {
		t.Errorf("a request whose rule ran out of time: got %q, want status 403 (denied)", got)
	}
	if took > 5*timeout {
		t.Errorf("the rule's answer came after %v, want it cut at about the rule's time limit %v (at most %v)", took, timeout, 5*timeout)
	}
	for _, r := range h.Requests() {
		if strings.Contains(r, "/api/") {
			t.Errorf("the origin received the request whose rule timed out: %q", r)
		}
	}

	// Nothing of the evaluation is left running.
	cpu0 := cpuTicks(t, pid)
	time.Sleep(3 * time.Second)
	if used := cpuTicks(t, pid) - cpu0; used > 100 {
		t.Errorf("ebpfjail used %d clock ticks of CPU in the 3s after the answer, want it idle (at most 100: no evaluation left running)", used)
	}

	s.send(t, "get "+base+"/ok")
	if got := s.expect(t, "", 30*time.Second); got != "status 200" {
		t.Errorf("a normal path after the timed-out one: got %q, want status 200\nstderr:\n%s", got, s.stderr())
	}
	s.send(t, "exit")
}

// floodOrigin answers /headers with about 9 MiB of response headers (under
// net/http's default limit of 10 MiB, so an unbounded proxy takes them all
// in) and anything else with "ok", over HTTP on port 80 and over HTTPS
// (HTTP/2 or HTTP/1.1) on 443 with a certificate from ca.
func floodOrigin(t *testing.T, h *testutil.Host, ca *testutil.TestCA) {
	t.Helper()
	pad := strings.Repeat("a", 1<<20)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/headers" {
			for i := range 9 {
				w.Header().Set(fmt.Sprintf("X-Pad-%d", i), pad)
			}
		}
		io.WriteString(w, "ok\n")
	})
	clear := &http.Server{Handler: handler}
	go clear.Serve(h.Listen(t, "tcp", "[::]:80"))
	t.Cleanup(func() { clear.Close() })
	tlsSrv := &http.Server{Handler: handler, TLSConfig: tlsConfigFor(ca.Leaf(t, h.IPv4.String(), h.IPv6.String()))}
	tlsSrv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	go tlsSrv.ServeTLS(h.Listen(t, "tcp", "[::]:443"), "", "")
	t.Cleanup(func() { tlsSrv.Close() })
}

func TestPrivilegedResponseHeaderFloodStaysUnderAMemoryBound(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	floodOrigin(t, h, ca)
	client := buildTestdata(t, "exhaust")
	rule := fmt.Sprintf("r.host === '%s' || r.host === '%s'", h.IPv4, h.IPv6)
	// In clear HTTP/1.1, and through the MITM in HTTP/2 on both legs.
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			s := startSupervised(t, "env", "SSL_CERT_FILE="+ca.PEMPath, bin, "--user", "nobody", "--js", rule, "--", client)
			pid := s.cmd.Process.Pid
			s.expect(t, "ready", 30*time.Second)
			base := scheme + "://" + h.IPv4.String()
			// Legitimate requests go to the other address: one oversized
			// response head ends the whole HTTP/2 connection it came on
			// (HPACK state cannot be skipped), which is the flooding
			// origin's own connection, not a bystander's.
			legit := scheme + "://[" + h.IPv6.String() + "]/"
			s.send(t, "get "+legit)
			if got := s.expect(t, "", 30*time.Second); got != "status 200" {
				t.Fatalf("before the flood: got %q, want status 200\nstderr:\n%s", got, s.stderr())
			}
			rss0 := memKiB(t, pid, "VmRSS")

			s.send(t, "flood "+base+"/headers 40")
			s.expect(t, "flooding", 10*time.Second)
			// Legitimate requests are answered throughout.
			for range 5 {
				time.Sleep(2 * time.Second)
				s.send(t, "get "+legit)
				if got := s.expect(t, "", 60*time.Second); got != "status 200" {
					t.Errorf("a legitimate request during the flood: got %q, want status 200", got)
				}
			}
			s.send(t, "stop")
			summary := s.expect(t, "stopped", 60*time.Second)
			peak := memKiB(t, pid, "VmHWM")
			t.Logf("flood: %s; ebpfjail RSS %d MiB before, peak %d MiB", summary, rss0>>10, peak>>10)
			if peak > exhaustMiB<<10 {
				t.Errorf("ebpfjail's peak RSS under the header flood: got %d MiB, want under %d MiB", peak>>10, exhaustMiB)
			}
			if !strings.Contains(summary, "502=") || strings.Contains(summary, "200=") {
				t.Errorf("answers to the oversized responses: got %q, want only 502s", summary)
			}
			rss := settleRSS(t, pid, rss0+backMiB<<10)
			t.Logf("RSS after the flood: %d MiB", rss>>10)
			if rss > rss0+backMiB<<10 {
				t.Errorf("ebpfjail's RSS after the flood: got %d MiB, want it back within %d MiB of the %d MiB before", rss>>10, backMiB, rss0>>10)
			}
			s.send(t, "exit")
		})
	}
}

func TestPrivilegedOversizedRequestHeadersGet431(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 80)
	client := buildTestdata(t, "exhaust")
	rule := fmt.Sprintf("r.host === '%s'", h.IPv4)
	s := startSupervised(t, bin, "--user", "nobody", "--js", rule, "--", client)
	s.expect(t, "ready", 30*time.Second)
	base := "http://" + h.IPv4.String()
	// The first request of a connection is classified from at most 64 KiB;
	// the next one on the same kept-alive connection is read by net/http.
	s.send(t, "get "+base+"/first")
	if got := s.expect(t, "", 30*time.Second); got != "status 200" {
		t.Fatalf("first request: got %q, want status 200", got)
	}
	// A head of 300 KiB: under net/http's default limit of 1 MiB, over
	// ebpfjail's bound, and small enough to be all sent before the answer
	// comes (a server answers a head over its limit without reading the
	// rest).
	s.send(t, "get "+base+"/?"+strings.Repeat("q", 300<<10))
	if got := s.expect(t, "", 30*time.Second); got != "status 431" {
		t.Errorf("a request with 300 KiB of head on a kept-alive connection: got %q, want status 431", got)
	}
	for _, r := range h.Requests() {
		if len(r) > 256<<10 {
			t.Errorf("the origin received the oversized request (%d bytes)", len(r))
		}
	}
	s.send(t, "exit")
}

// holdOrigin serves HTTPS with HTTP/2: /hold answers with a head and then
// holds the body until the request ends or the test releases it; anything
// else is the usual test handler.
func holdOrigin(t *testing.T, h *testutil.Host, ca *testutil.TestCA) {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	ln := h.Listen(t, "tcp", "[::]:443")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/hold" {
				io.WriteString(w, "ok\n")
				return
			}
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}),
	}
	srv.TLSConfig = tlsConfigFor(ca.Leaf(t, h.IPv4.String()))
	srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		once.Do(func() { close(release) })
		srv.Close()
		<-done
	})
}

func TestPrivilegedHeldHTTP2StreamsStayUnderAMemoryBound(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	holdOrigin(t, h, ca)
	client := buildTestdata(t, "exhaust")
	rule := fmt.Sprintf("r.host === '%s'", h.IPv4)
	s := startSupervised(t, "env", "SSL_CERT_FILE="+ca.PEMPath, bin, "--user", "nobody", "--js", rule, "--", client)
	pid := s.cmd.Process.Pid
	s.expect(t, "ready", 30*time.Second)
	base := "https://" + h.IPv4.String()
	s.send(t, "get "+base+"/")
	if got := s.expect(t, "", 30*time.Second); got != "status 200" {
		t.Fatalf("before the load: got %q, want status 200\nstderr:\n%s", got, s.stderr())
	}
	rss0 := memKiB(t, pid, "VmRSS")

	s.send(t, "hold "+base+"/hold 20 250")
	held := s.expect(t, "held", 90*time.Second)
	rss1, st := memKiB(t, pid, "VmRSS"), s.askStats(t)
	t.Logf("%s; ebpfjail RSS %d MiB before, %d MiB while held (%d goroutines, %d active connections)", held, rss0>>10, rss1>>10, st.goroutines, st.active)
	// Legitimate requests are still answered, and a trivial rule is not
	// starved into a timeout.
	for range 5 {
		s.send(t, "get "+base+"/")
		if got := s.expect(t, "", 60*time.Second); got != "status 200" {
			t.Errorf("a legitimate request while the streams are held: got %q, want status 200", got)
		}
	}
	peak := memKiB(t, pid, "VmHWM")
	s.send(t, "stop")
	t.Log(s.expect(t, "stopped", 60*time.Second))
	t.Logf("peak RSS %d MiB", peak>>10)
	// The client reset every stream it held: the terminal gets a few
	// lines about it, not one per stream.
	time.Sleep(time.Second)
	if lines := strings.Count(s.stderr(), "\n"); lines > 50 {
		t.Errorf("ebpfjail wrote %d lines on its terminal for the load, want at most 50:\n%.3000s", lines, s.stderr())
	}
	if peak > exhaustMiB<<10 {
		t.Errorf("ebpfjail's peak RSS with 20 connections x 250 held streams: got %d MiB, want under %d MiB", peak>>10, exhaustMiB)
	}
	if strings.Contains(s.stderr(), "rule timed out") {
		t.Errorf("a trivial rule timed out under the load:\n%s", s.stderr())
	}
	rss := settleRSS(t, pid, rss0+backMiB<<10)
	t.Logf("RSS after the streams closed: %d MiB", rss>>10)
	if rss > rss0+backMiB<<10 {
		t.Errorf("ebpfjail's RSS after the streams closed: got %d MiB, want it back within %d MiB of the %d MiB before", rss>>10, backMiB, rss0>>10)
	}
	s.send(t, "exit")
}
