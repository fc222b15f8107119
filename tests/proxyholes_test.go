package tests

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// countingOrigin listens on port in h's namespace and reports, per
// connection, how many bytes the client sent after its head: after a 101
// for a request that asks to upgrade, else everything (a raw TCP stream).
func countingOrigin(t *testing.T, h *testutil.Host, port int) <-chan int64 {
	t.Helper()
	ln := h.Listen(t, "tcp", net.JoinHostPort("::", strconv.Itoa(port)))
	got := make(chan int64, 16)
	testutil.Serve(ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		if b, _ := br.Peek(4); string(b) == "GET " {
			if _, err := http.ReadRequest(br); err != nil {
				got <- -1
				return
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		}
		n, _ := io.Copy(io.Discard, br)
		got <- n
	})
	return got
}

// sendAfter is the jailed client of the max_tx_bytes tests: it opens a
// connection, upgrades it when asked, sends N bytes and reads to the end.
const sendAfter = `import socket, sys
host, port, n, upgrade = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "upgrade"
s = socket.create_connection((host, port), timeout=20)
if upgrade:
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" % (host.encode(), port))
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            break
        head += b
    print("head", head.split(b"\r\n")[0].decode())
sent, chunk = 0, b"x" * 65536
try:
    while sent < n:
        sent += s.send(chunk[:min(len(chunk), n - sent)])
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
except OSError as e:
    print("cut:", e)
print("sent", sent)`

func TestPrivilegedMaxTxBytesCountsUpgradedAndSplicedStreams(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	const total, limit = 1_000_000, 1000
	for _, tc := range []struct {
		name, mode string
		port       int
		extra      []string
	}{
		{"websocket-upgrade", "upgrade", 8081, nil},
		{"tcp-splice", "raw", 9000, []string{"--tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := countingOrigin(t, h, tc.port)
			ev := eventsPath(t)
			run := func(rule string) (int64, result) {
				args := append([]string{"-v", "--user", "nobody", "--log-json", ev, "--js", rule,
					"--resolve", "allowed.test:" + h.IPv4.String()}, tc.extra...)
				args = append(args, "--", python(t), "-c", sendAfter, "allowed.test", strconv.Itoa(tc.port), strconv.Itoa(total), tc.mode)
				r := jail(t, runOpts{}, args...)
				select {
				case n := <-got:
					return n, r
				case <-time.After(30 * time.Second):
					t.Fatalf("the origin saw no connection end\n%s", r)
					return 0, r
				}
			}
			// Control: without a limit every byte arrives.
			n, r := run("r.host === 'allowed.test'")
			if n != total {
				t.Fatalf("control without max_tx_bytes: the origin received %d bytes after the head, want %d\n%s", n, total, r)
			}
			n, r = run("r.host === 'allowed.test' && ({allow: {max_tx_bytes: " + strconv.Itoa(limit) + "}})")
			t.Logf("with max_tx_bytes %d: the origin received %d bytes after the head", limit, n)
			if n > limit {
				t.Errorf("with max_tx_bytes %d: the origin received %d bytes after the head, want at most %d\n%s", limit, n, limit, r)
			}
			cut := false
			for _, e := range readEvents(t, ev) {
				cut = cut || strings.HasPrefix(e.Reason, "max_tx_bytes")
			}
			if !cut {
				t.Errorf("no event says max_tx_bytes cut the connection: %v", readEvents(t, ev))
			}
		})
	}
	noJailsLeft(t)
}

// localRecorder is an HTTP server on one address of this host (outside
// any jail) that records "address path" for each request.
type localRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (lr *localRecorder) listen(t *testing.T, addr netip.Addr) int {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lr.mu.Lock()
		lr.seen = append(lr.seen, addr.String()+" "+r.URL.Path)
		lr.mu.Unlock()
		io.WriteString(w, "local service\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func (lr *localRecorder) got(path string) bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	for _, s := range lr.seen {
		if strings.HasSuffix(s, " "+path) {
			return true
		}
	}
	return false
}

func (lr *localRecorder) all() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]string(nil), lr.seen...)
}

// withHosts runs ebpfjail in a private mount namespace whose /etc/hosts is
// hosts, so names resolve to local addresses through the system resolver
// (ebpfjail's and the jailed command's) without touching the machine's.
func withHosts(t *testing.T, hosts string) runOpts {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not installed")
	}
	f := filepath.Join(sharedDir(t), "hosts")
	if err := os.WriteFile(f, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	return runOpts{setup: func(cmd *exec.Cmd) {
		// unshare makes the new namespace's mounts private: the bind
		// mount is seen by nothing outside it.
		args := append([]string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
			`mount --bind "$0" /etc/hosts && exec "$@"`, f, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, cmd.Args = unshare, args
	}}
}

func TestPrivilegedNamesNeverLeadToTheHostItself(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t) // its host-side address is one of this host's own
	lr := &localRecorder{}
	p4 := lr.listen(t, netip.MustParseAddr("127.0.0.1"))
	p6 := lr.listen(t, netip.IPv6Loopback())
	pOwn := lr.listen(t, h.HostIPv4)
	hosts := "127.0.0.1 localhost\n::1 localhost\n" +
		"127.0.0.1 rebind.test\n" +
		"::ffff:127.0.0.1 mapped.test\n" +
		"::1 rebind6.test\n" +
		h.HostIPv4.String() + " own.test\n" +
		"127.0.0.1 optin.test\n"
	opts := withHosts(t, hosts)
	// The rule refuses loopback literals and localhost, and nothing else.
	const rule = `!/^127\.|^localhost$|:/.test(r.host)`
	curl := func(t *testing.T, rule string, extra []string, url string) (result, string) {
		t.Helper()
		ev := eventsPath(t)
		args := append([]string{"-v", "--user", "nobody", "--log-json", ev, "--js", rule}, extra...)
		args = append(args, "--", "curl", "-sS", "-w", "\nstatus %{http_code}\n", url)
		r := jail(t, opts, args...)
		b, _ := os.ReadFile(ev)
		return r, string(b)
	}
	for _, tc := range []struct{ name, url string }{
		{"v4-loopback", fmt.Sprintf("http://rebind.test:%d/v4-loopback", p4)},
		{"v4-mapped-loopback", fmt.Sprintf("http://mapped.test:%d/v4-mapped-loopback", p4)},
		{"v6-loopback", fmt.Sprintf("http://rebind6.test:%d/v6-loopback", p6)},
		{"own-address", fmt.Sprintf("http://own.test:%d/own-address", pOwn)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, events := curl(t, rule, nil, tc.url)
			if lr.got("/" + tc.name) {
				t.Errorf("the local service received the request: got %v, want nothing\n%s", lr.all(), r)
			}
			contains(t, "status", r.stdout, "status 403")
			contains(t, "event reason", events, "local destination")
			contains(t, "event hint", events, "--allow-local-name")
		})
	}
	// Controls: the same attempt arrives when the operator opted in, and
	// IP literals and localhost stay the rule's to decide.
	for _, tc := range []struct {
		name, rule string
		extra      []string
		url        string
	}{
		{"opt-in-glob", rule, []string{"--allow-local-name", "optin.*"}, fmt.Sprintf("http://optin.test:%d/opt-in-glob", p4)},
		{"opt-in-pin", rule, []string{"--resolve", "pinned.test:127.0.0.1"}, fmt.Sprintf("http://pinned.test:%d/opt-in-pin", p4)},
		{"v4-literal", "true", nil, fmt.Sprintf("http://127.0.0.1:%d/v4-literal", p4)},
		{"v6-literal", "true", nil, fmt.Sprintf("http://[::1]:%d/v6-literal", p6)},
		{"localhost", "true", nil, fmt.Sprintf("http://localhost:%d/localhost", p4)},
		{"own-literal", "true", nil, fmt.Sprintf("http://%s:%d/own-literal", h.HostIPv4, pOwn)},
	} {
		t.Run("control-"+tc.name, func(t *testing.T) {
			r, _ := curl(t, tc.rule, tc.extra, tc.url)
			contains(t, "status", r.stdout, "status 200")
			if !lr.got("/" + tc.name) {
				t.Errorf("the local service did not receive %s: got %v\n%s", tc.url, lr.all(), r)
			}
		})
	}
	noJailsLeft(t)
}

// connectRecorder answers like a forward proxy would and records the
// target of every CONNECT it gets.
type connectRecorder struct {
	mu      sync.Mutex
	targets []string
}

func (cr *connectRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		io.WriteString(w, "not a proxy request\n")
		return
	}
	cr.mu.Lock()
	cr.targets = append(cr.targets, r.Host)
	cr.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (cr *connectRecorder) all() []string {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return append([]string(nil), cr.targets...)
}

// nestedConnect opens a tunnel to allowed.test:80 the way a proxy client
// does, then asks for another tunnel inside it, and a request in that.
const nestedConnect = `import socket, sys
s = socket.create_connection(("allowed.test", 80), timeout=10)
f = s.makefile("rb")
def answer():
    line = f.readline().decode().strip()
    while f.readline() not in (b"\r\n", b""):
        pass
    return line
s.sendall(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n")
print("outer", answer())
s.sendall(b"CONNECT allowed.test:8449 HTTP/1.1\r\nHost: allowed.test:8449\r\n\r\n")
print("inner", answer())
s.sendall(b"GET /" + sys.argv[1].encode() + b" HTTP/1.1\r\nHost: allowed.test:8449\r\nConnection: close\r\n\r\n")
print(f.read().decode(errors="replace"))`

func TestPrivilegedConnectInsideAnOpenedConnectionIsDecidedWithItsOwnPort(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	// The allowed host is a forward proxy on 80 and 443 (TLS), and serves
	// HTTP on 8449, the port the tunnels ask for.
	cr := &connectRecorder{}
	for _, port := range []int{80, 443} {
		ln := h.Listen(t, "tcp", net.JoinHostPort("::", strconv.Itoa(port)))
		if port == 443 {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "allowed.test")}, NextProtos: []string{"http/1.1"}})
		}
		srv := &http.Server{Handler: cr, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	h.ServeHTTP(t, 8449)
	sawPath := func(path string) bool {
		for _, r := range h.Requests() {
			if strings.HasSuffix(r, " /"+path) {
				return true
			}
		}
		return false
	}

	// Control outside the jail: the recorder does record a CONNECT.
	c, err := tls.Dial("tcp", netip.AddrPortFrom(h.IPv4, 443).String(), &tls.Config{ServerName: "allowed.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("control: dial the proxy: %v", err)
	}
	io.WriteString(c, "CONNECT allowed.test:8449 HTTP/1.1\r\nHost: allowed.test:8449\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	c.Close()
	if err != nil || res.StatusCode != http.StatusOK || !contains1(cr.all(), "allowed.test:8449") {
		t.Fatalf("control: a CONNECT sent straight to the proxy: got %v %v, recorded %v", res, err, cr.all())
	}
	before := len(cr.all())

	run := func(rule string, command ...string) result {
		args := append([]string{"-v", "--user", "nobody", "--js", rule,
			"--resolve", "allowed.test:" + h.IPv4.String(), "--"}, command...)
		return jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + ca.PEMPath}}, args...)
	}
	viaTLS := func(path string) []string {
		// curl trusts a proxy's certificate only through --proxy-cacert.
		return []string{"sh", "-c", `exec curl -sS -p -x https://allowed.test:443 --proxy-cacert "$CURL_CA_BUNDLE" -w "\nstatus %{http_code}\n" "$0"`,
			"http://allowed.test:8449/" + path}
	}
	t.Run("inside-intercepted-tls", func(t *testing.T) {
		r := run("r.host === 'allowed.test' && r.port === 443", viaTLS("tls-denied")...)
		if got := cr.all()[before:]; len(got) > 0 {
			t.Errorf("the allowed host received CONNECT %v, a port the rule never saw\n%s", got, r)
		}
		if sawPath("tls-denied") {
			t.Errorf("port 8449 received the request the rule denied\n%s", r)
		}
		contains(t, "status", r.stdout, "status 403")
		// Control: a rule allowing the port lets the tunnel's request through.
		r = run("r.host === 'allowed.test'", viaTLS("tls-allowed")...)
		contains(t, "status", r.stdout, "status 200")
		if !sawPath("tls-allowed") {
			t.Errorf("control: port 8449 did not receive the allowed request: %v\n%s", h.Requests(), r)
		}
	})
	t.Run("inside-a-clear-tunnel", func(t *testing.T) {
		r := run("r.host === 'allowed.test' && r.port === 80", python(t), "-c", nestedConnect, "clear-denied")
		if got := cr.all()[before:]; len(got) > 0 {
			t.Errorf("the allowed host received CONNECT %v, a port the rule never saw\n%s", got, r)
		}
		if sawPath("clear-denied") {
			t.Errorf("port 8449 received the request the rule denied\n%s", r)
		}
		r = run("r.host === 'allowed.test'", python(t), "-c", nestedConnect, "clear-allowed")
		if !sawPath("clear-allowed") {
			t.Errorf("control: port 8449 did not receive the allowed request: %v\n%s", h.Requests(), r)
		}
	})
	noJailsLeft(t)
}
