package tests

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// The kernel splice's tests (--kernel-splice): every way a tunnel is
// spliced (--no-mitm TLS, --tcp, a CONNECT tunnel), once with the kernel
// splice and once with the kernel made to refuse it
// (EBPFJAIL_TEST_NO_SOCKMAP=1, internal/bpf.NoSpliceEnv): the user-space
// copy must pass the same checks.

const (
	splicePlainPort = 9000
	spliceTLSPort   = 9443
	spliceSize      = 64 << 20
	noSplice        = "EBPFJAIL_TEST_NO_SOCKMAP=1"
)

// spliceConn is what the origin saw of one connection: raw bytes each way
// on the wire, the sha256 of what it sent and received, and how it ended.
type spliceConn struct {
	mode           string
	rawIn, rawOut  int64
	sent, recv     string
	end            string
	endAfterAccept time.Duration
}

// spliceOrigin plays the far end of spliceclient's modes on h's plain and
// TLS ports; conns returns what it saw, in order of completion.
type spliceOrigin struct {
	mu    sync.Mutex
	conns []spliceConn
}

func newSpliceOrigin(t *testing.T, h *testutil.Host, ca *testutil.TestCA) *spliceOrigin {
	o := &spliceOrigin{}
	plain := h.Listen(t, "tcp", net.JoinHostPort("::", strconv.Itoa(splicePlainPort)))
	testutil.Serve(plain, func(c net.Conn) { o.serve(c, nil) })
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "allowed.test")}}
	secure := h.Listen(t, "tcp", net.JoinHostPort("::", strconv.Itoa(spliceTLSPort)))
	testutil.Serve(secure, func(c net.Conn) { o.serve(c, cfg) })
	return o
}

// countConn counts the raw bytes under TLS.
type countConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

func (o *spliceOrigin) serve(nc net.Conn, cfg *tls.Config) {
	start := time.Now()
	cc := &countConn{Conn: nc}
	var c net.Conn = cc
	if cfg != nil {
		c = tls.Server(cc, cfg)
	}
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	sc := spliceConn{mode: strings.TrimSpace(line), sent: "-", recv: "-"}
	rd := io.MultiReader(br, c)
	switch sc.mode {
	case "up-first":
		sc.recv, err = readAll(rd)
		if err == nil {
			sc.sent, err = sendAll(c, nc)
		}
	case "down-first":
		if sc.sent, err = sendAll(c, nc); err == nil {
			sc.recv, err = readAll(rd)
		}
	case "origin-reset":
		time.Sleep(300 * time.Millisecond)
		nc.(*net.TCPConn).SetLinger(0)
	case "client-reset":
		_, err = io.Copy(io.Discard, rd)
	case "stream":
		buf := make([]byte, 64<<10)
		for err == nil {
			_, err = c.Write(buf)
			time.Sleep(time.Millisecond)
		}
	}
	sc.end, sc.endAfterAccept = how(err), time.Since(start)
	nc.Close()
	sc.rawIn, sc.rawOut = cc.in.Load(), cc.out.Load()
	o.mu.Lock()
	o.conns = append(o.conns, sc)
	o.mu.Unlock()
}

// sendAll sends 64 MiB of random bytes and half-closes; it returns their
// sha256.
func sendAll(c, raw net.Conn) (string, error) {
	h := sha256.New()
	rnd := rand.NewChaCha8([32]byte{2})
	buf := make([]byte, 1<<20)
	for n := 0; n < spliceSize; n += len(buf) {
		rnd.Read(buf)
		h.Write(buf)
		if _, err := c.Write(buf); err != nil {
			return "", err
		}
	}
	if tc, ok := c.(*tls.Conn); ok {
		tc.CloseWrite()
	} else {
		raw.(*net.TCPConn).CloseWrite()
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readAll(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// how names the way a connection ended, as spliceclient does.
func how(err error) string {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	}
	return "error " + err.Error()
}

// seen waits for the origin's record of mode.
func (o *spliceOrigin) seen(t *testing.T, mode string) spliceConn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		for i, c := range o.conns {
			if c.mode == mode {
				o.conns = append(o.conns[:i], o.conns[i+1:]...)
				o.mu.Unlock()
				return c
			}
		}
		o.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the origin saw no %s connection end", mode)
	return spliceConn{}
}

// spliceWays are the tunnels ebpfjail splices once decided, as
// spliceclient's WAY and ADDR, with the flags that allow them.
func spliceWays(h *testutil.Host) []struct {
	name, way, addr string
	extra           []string
} {
	ip := h.IPv4.String()
	return []struct {
		name, way, addr string
		extra           []string
	}{
		{"no-mitm", "tls:allowed.test", "allowed.test:" + strconv.Itoa(spliceTLSPort), []string{"--no-mitm", "allowed.test"}},
		{"tcp", "plain", ip + ":" + strconv.Itoa(splicePlainPort), []string{"--tcp"}},
		{"connect", "connect:" + ip + ":3128", "allowed.test:" + strconv.Itoa(splicePlainPort), []string{"--tcp"}},
	}
}

func TestPrivilegedSplicedTunnelsKeepBytesHalfClosesResetsAndCounts(t *testing.T) {
	s := newSite(t)
	o := newSpliceOrigin(t, s.h, s.ca)
	client := buildTestdata(t, "spliceclient")
	rule := "r.host === 'allowed.test' || r.host === '" + s.h.IPv4.String() + "'"
	for _, kernel := range []bool{true, false} {
		for _, w := range spliceWays(s.h) {
			name := w.name + "/kernel"
			env := []string{"SSL_CERT_FILE=" + s.ca.PEMPath}
			if !kernel {
				name, env = w.name+"/user-space", append(env, noSplice)
			}
			t.Run(name, func(t *testing.T) {
				ev := eventsPath(t)
				args := append([]string{"-vv", "--kernel-splice", "--user", "nobody", "--js", rule, "--log-json", ev,
					"--resolve", "allowed.test:" + s.h.IPv4.String()}, w.extra...)
				args = append(args, "--", client, w.way, w.addr, "up-first", "down-first", "origin-reset", "client-reset")
				r := jail(t, runOpts{env: env, timeout: 3 * time.Minute}, args...)
				joined := strings.Count(r.stderr, "tunnel joined in the kernel splice")
				if kernel && joined < 4 {
					t.Errorf("%d tunnels joined in the kernel splice, want 4 (one per mode)\n%s", joined, r)
				}
				if !kernel && (joined > 0 || !strings.Contains(r.stderr, "kernel splice unavailable")) {
					t.Errorf("with %s, %d tunnels joined in the kernel splice; want none, and a warning saying why\n%s", noSplice, joined, r)
				}
				checkSpliced(t, o, r, readEvents(t, ev))
			})
		}
	}
}

// checkSpliced compares what the client printed with what the origin saw
// and with the events' byte counts.
func checkSpliced(t *testing.T, o *spliceOrigin, r result, events []event.Event) {
	t.Helper()
	lines := map[string]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			lines[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for _, mode := range []string{"up-first", "down-first"} {
		c := o.seen(t, mode)
		want := fmt.Sprintf("sent=%s recv=%s", c.recv, c.sent)
		if lines[mode] != want || c.end != "eof" {
			t.Errorf("%s: the client says %q, the origin ended %q; want %q (sha256 of what each end sent and received) and eof\n%s", mode, lines[mode], c.end, want, r)
		}
		if !counted(events, c) {
			t.Errorf("%s: no event with bytes_up=%d bytes_down=%d (the origin's raw bytes); events: %+v", mode, c.rawIn, c.rawOut, events)
		}
	}
	if c := o.seen(t, "origin-reset"); lines["origin-reset"] != "got reset" {
		t.Errorf("origin-reset: the client says %q, want %q (the origin ended %q)\n%s", lines["origin-reset"], "got reset", c.end, r)
	}
	if c := o.seen(t, "client-reset"); c.end != "reset" {
		t.Errorf("client-reset: the origin's read ended %q, want reset\n%s", c.end, r)
	}
}

// counted says whether an event carries c's raw byte counts.
func counted(events []event.Event, c spliceConn) bool {
	for _, e := range events {
		if e.BytesUp == c.rawIn && e.BytesDown == c.rawOut {
			return true
		}
	}
	return false
}

func TestPrivilegedSplicedTunnelEndsAtBothSidesWhenEbpfjailIsKilled(t *testing.T) {
	testutil.RequireRoot(t)
	// The jail of the killed supervisor must wait for this test's --cleanup.
	testutil.SweepExclusive(t)
	s := newSite(t)
	o := newSpliceOrigin(t, s.h, s.ca)
	client := buildTestdata(t, "spliceclient")
	ip := s.h.IPv4.String()
	for _, kernel := range []bool{true, false} {
		name := "kernel"
		argv := []string{bin, "-vv", "--kernel-splice", "--user", "nobody", "--js", "r.host === '" + ip + "'", "--tcp", "--",
			client, "plain", ip + ":" + strconv.Itoa(splicePlainPort), "stream"}
		if !kernel {
			name, argv = "user-space", append([]string{"env", noSplice}, argv...)
		}
		t.Run(name, func(t *testing.T) {
			sv := startSupervised(t, argv...)
			var pid int
			fmt.Sscanf(sv.expect(t, "pid ", 30*time.Second), "pid %d", &pid)
			t.Cleanup(func() { killPIDs(strconv.Itoa(pid)) })
			sv.expect(t, "streaming", 30*time.Second)
			sv.cmd.Process.Signal(syscall.SIGKILL)
			// Process.Wait, not Cmd.Wait, which would close the pipes the
			// client (still running) writes to.
			sv.cmd.Process.Wait()
			killed := time.Now()
			line := sv.expect(t, "stream ended", 10*time.Second)
			took := time.Since(killed)
			c := o.seen(t, "stream")
			t.Logf("client: %q %v after the kill; origin: %s", line, took.Round(time.Millisecond), c.end)
			if line != "stream ended eof" && line != "stream ended reset" {
				t.Errorf("client: got %q, want the stream to end (eof or reset)", line)
			}
			if c.end != "reset" {
				t.Errorf("origin: the stream ended %q, want reset (its writes refused)", c.end)
			}
			if strings.Contains(sv.stderr(), "tunnel joined in the kernel splice") != kernel {
				t.Errorf("kernel splice used: got %v, want %v\n%s", !kernel, kernel, sv.stderr())
			}
			cleanupRemoves(t, "the jailed client", pid)
		})
	}
	noJailsLeft(t)
}

func TestPrivilegedCheckSaysWhetherTheKernelSpliceIsUsed(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{}, "check")
	contains(t, "check", r.stdout, "ok    kernel splice (sockhash, sk_skb stream verdict)")
	r = jail(t, runOpts{env: []string{noSplice}}, "check")
	contains(t, "check with the kernel splice refused", r.stderr, "warning: kernel splice unavailable")
	if strings.Contains(r.stdout, "kernel splice") {
		t.Errorf("check with the kernel splice refused: got %q, want no ok line for it", r.stdout)
	}
}
