package tests

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/attack"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// attemptLines parses check --attack's report: attempt name -> status.
var attemptLine = regexp.MustCompile(`(?m)^(blocked|LEAKED|n/a|ok|FAILED)\s+(\S+)\s`)

func attemptStatuses(out string) map[string][]string {
	got := map[string][]string{}
	for _, m := range attemptLine.FindAllStringSubmatch(out, -1) {
		got[m[2]] = append(got[m[2]], m[1])
	}
	return got
}

// wantAllBlocked checks the report has a line for every built-in attempt
// and that each is blocked (the controls ok; n/a only where allowed).
func wantAllBlocked(t *testing.T, r result, mayBeNA ...string) {
	t.Helper()
	got := attemptStatuses(r.stdout)
	for _, a := range attack.Attempts() {
		st := got[a.Name]
		want := "blocked"
		if a.Control {
			want = "ok"
		}
		switch {
		case len(st) == 0:
			t.Errorf("%s: no line in the report", a.Name)
		case len(st) == 1 && st[0] == want:
		case len(st) == 1 && st[0] == "n/a" && contains1(mayBeNA, a.Name):
			t.Logf("%s: n/a on this machine", a.Name)
		default:
			t.Errorf("%s: got %v, want [%s]", a.Name, st, want)
		}
	}
	if r.code != 0 || !strings.Contains(r.stdout, "every attempt was blocked") {
		t.Errorf("got exit %d without the all-blocked verdict, want 0 with it\n%s", r.code, r)
	}
}

func contains1(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPrivilegedAttackSelfTestFindsEveryAttemptBlocked(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{timeout: 3 * time.Minute}, "check", "--attack")
	wantAllBlocked(t, r, "setuid")
	contains(t, "canary verdict", r.stdout, "canaries: nothing arrived but the controls")
	noJailsLeft(t)
}

// rawRecorder accepts connections on ln (TLS with cert when given),
// records the first bytes of each, and answers every one with a 200.
type rawRecorder struct {
	mu  sync.Mutex
	got []string
}

func (rr *rawRecorder) add(s string) {
	rr.mu.Lock()
	rr.got = append(rr.got, s)
	rr.mu.Unlock()
}

func (rr *rawRecorder) all() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]string(nil), rr.got...)
}

func (rr *rawRecorder) serve(ln net.Listener, cert *tls.Certificate, what string) {
	testutil.Serve(ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if cert != nil {
			c = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}})
		}
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if n == 0 {
			return // a connection that carried nothing (the bait socket)
		}
		rr.add(what + " " + string(buf[:n]))
		if strings.Contains(strings.ToLower(string(buf[:n])), "\r\nupgrade: ") {
			rr.upgraded(c, what)
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nrecorder\n")
	})
}

// upgraded switches protocols and records what comes through past the
// upgrade attempt's max_tx_bytes.
func (rr *rawRecorder) upgraded(c net.Conn, what string) {
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if n, _ := io.Copy(io.Discard, c); n > attack.UpgradeLimit {
		rr.add(fmt.Sprintf("%s %d bytes after the upgrade, limit %d", what, n, attack.UpgradeLimit))
	}
}

func (rr *rawRecorder) serveUDP(pc net.PacketConn, what string) {
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			rr.add(what + " " + string(buf[:n]))
		}
	}()
}

// standInSocket puts a recording unix socket at a path of the default deny
// list when the machine has none there; it returns whether it did.
func standInSocket(t *testing.T, rr *rawRecorder, path string) bool {
	t.Helper()
	lockStandIn(t, path)
	if _, err := os.Stat(path); err == nil {
		t.Logf("%s exists: the attack tries the real one", path)
		return false
	}
	dir := filepath.Dir(path)
	made := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	t.Cleanup(func() {
		ln.Close()
		os.Remove(path)
		if made != "" {
			os.RemoveAll(made)
		}
	})
	rr.serve(ln, nil, "unix "+path)
	return true
}

// The attempts aimed at a test host whose every port records: whatever the
// report says, the host must see nothing but the two controls.
func TestPrivilegedAttackReachesNothingOnARecordingHost(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	cert := ca.Leaf(t, attack.Decoy)
	rr := &rawRecorder{}
	rr.serve(h.Listen(t, "tcp", "[::]:80"), nil, "http")
	rr.serve(h.Listen(t, "tcp", "[::]:443"), &cert, "https")
	rr.serveUDP(h.ListenPacket(t, "udp", "[::]:9"), "udp/9")
	rr.serveUDP(h.ListenPacket(t, "udp", "[::]:443"), "udp/443")
	dns := h.ServeDNS(t, 53)
	standIns := 0
	for _, p := range []string{"/run/systemd/resolve/io.systemd.Resolve", "/run/docker.sock"} {
		if standInSocket(t, rr, p) {
			standIns++
		}
	}
	r := jail(t, runOpts{timeout: 3 * time.Minute, env: []string{"SSL_CERT_FILE=" + ca.PEMPath}},
		"check", "--attack", "--target", h.IPv4.String(), "--target", h.IPv6.String())
	t.Logf("report:\n%s", r.stdout)
	wantAllBlocked(t, r, "setuid")
	if standIns == 2 && strings.Contains(r.stdout, "unix-resolver         n/a") {
		t.Errorf("the resolver stand-in was not tried")
	}

	var controls, leaks []string
	for _, g := range rr.all() {
		toDecoy := strings.Contains(strings.ToLower(g), "host: "+attack.Decoy)
		if strings.HasPrefix(g, "http GET "+attack.UpgradePath+" ") && toDecoy {
			continue // allowed, under max_tx_bytes: what passes the limit is recorded apart
		}
		isControl := (strings.HasPrefix(g, "http GET /control-http ") || strings.HasPrefix(g, "https GET /control-https ")) && toDecoy
		if isControl {
			controls = append(controls, g)
		} else {
			leaks = append(leaks, g)
		}
	}
	var overHTTP, overHTTPS int
	for _, c := range controls {
		if strings.HasPrefix(c, "http ") {
			overHTTP++
		} else {
			overHTTPS++
		}
	}
	if overHTTP == 0 || overHTTPS == 0 {
		t.Errorf("the host got %d control requests over HTTP and %d over HTTPS, want both (without them the run proves nothing): %q", overHTTP, overHTTPS, controls)
	}
	if len(leaks) > 0 {
		t.Errorf("the host received what the jail should have stopped:\n%s", strings.Join(leaks, "\n---\n"))
	}
	if q := dns.Queries(); len(q) > 0 {
		t.Errorf("the host's DNS server got %d queries, want none: %v", len(q), q)
	}
	noJailsLeft(t)
}

// The self-test must be able to fail: a command run as root can read the
// CA key, regain root, leave the cgroup and detach the programs, and the
// report says so (and the canary catches the escaped request).
func TestPrivilegedAttackSelfTestReportsWhatARootCommandGetsOut(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{timeout: 3 * time.Minute}, "--user", "root", "check", "--attack")
	if r.code != 1 {
		t.Errorf("exit %d, want 1\n%s", r.code, r)
	}
	got := attemptStatuses(r.stdout)
	for _, name := range []string{"ca-key", "setuid", "cgroup-escape", "bpf-detach", "state-tamper"} {
		if !contains1(got[name], "LEAKED") {
			t.Errorf("%s: got %v, want LEAKED", name, got[name])
		}
	}
	// The Landlock domain holds for root too: no ptrace of ebpfjail, of the
	// user's other processes or of the rule program.
	if jailIsolated(t) {
		for _, name := range []string{"ptrace-supervisor", "victim-ptrace", "victim-pidfd-getfd", "proc-verdict"} {
			if st := got[name]; len(st) != 1 || st[0] != "blocked" {
				t.Errorf("%s: got %v, want [blocked]", name, st)
			}
		}
	}
	contains(t, "canary", r.stdout, "canary received \"GET /cgroup-escape")
	noJailsLeft(t)
}
