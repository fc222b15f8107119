package tests

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// firstWord is a jailed client of a protocol whose server speaks first: it
// connects, says nothing, and prints what came first (data, a reset, an
// EOF) and how many milliseconds after connect() it came.
const firstWord = `import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
t = time.monotonic()
def ms():
    return "%d" % ((time.monotonic() - t) * 1000)
try:
    b = s.recv(200)
    print(("data " if b else "eof ") + ms() + " " + b.decode(errors="replace").strip())
except ConnectionResetError:
    print("reset " + ms())
except OSError as e:
    print("error " + ms() + " " + str(e))`

// lateTLS is a jailed HTTPS client that waits 300 ms after connect()
// before its ClientHello, then prints the status line and the body.
const lateTLS = `import socket, ssl, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
time.sleep(0.3)
ss = ssl.create_default_context().wrap_socket(s, server_hostname=host)
ss.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path.encode(), host.encode()))
data = b""
while True:
    b = ss.recv(4096)
    if not b:
        break
    data += b
head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
print(head.split("\r\n")[0])
print(body)`

// bannerServer greets every connection on port of h like an SSH server.
func bannerServer(t *testing.T, h *testutil.Host, port int) {
	t.Helper()
	ln := h.Listen(t, "tcp", net.JoinHostPort("::", strconv.Itoa(port)))
	testutil.Serve(ln, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-ebpfjail-test-banner\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 64))
	})
}

// firstReply runs firstWord in the jail and splits its line: what came,
// after how long.
func firstReply(t *testing.T, s *site, extra []string, host string, port int) (what string, after time.Duration, line string, r result) {
	t.Helper()
	r = s.run(t, "r.host === 'ssh.test' && r.port === 22", extra, python(t), "-c", firstWord, host, strconv.Itoa(port))
	line = strings.TrimSpace(r.stdout)
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("the client printed no reply line\n%s", r)
	}
	ms, _ := strconv.Atoi(f[1])
	return f[0], time.Duration(ms) * time.Millisecond, line, r
}

func TestPrivilegedServerFirstProtocolsAreGreetedOrRefusedAtOnce(t *testing.T) {
	s := newSite(t)
	bannerServer(t, s.h, 22)
	pin := []string{"--resolve", "ssh.test:" + s.h.IPv4.String()}
	const bound = time.Second

	what, after, line, r := firstReply(t, s, append([]string{"--tcp"}, pin...), "ssh.test", 22)
	t.Logf("--tcp, allowed: %q after %v (main waited 5 s)", what, after)
	if what != "data" || !strings.Contains(line, "SSH-2.0-ebpfjail-test-banner") || after > bound {
		t.Errorf("--tcp, allowed: got %q after %v, want the banner within %v\n%s", line, after, bound, r)
	}

	ev := eventsPath(t)
	what, after, line, r = firstReply(t, s, append([]string{"--log-json", ev}, pin...), "ssh.test", 22)
	t.Logf("without --tcp: %q after %v", what, after)
	if what != "reset" || after > bound {
		t.Errorf("without --tcp: got %q after %v, want a reset (ECONNRESET, not EOF) within %v\n%s", line, after, bound, r)
	}
	hinted := false
	for _, e := range readEvents(t, ev) {
		hinted = hinted || (e.Port == 22 && strings.Contains(e.Hint, "allow it with --tcp"))
	}
	if !hinted {
		t.Errorf("without --tcp: no event hints at --tcp: %v", readEvents(t, ev))
	}
	contains(t, "without --tcp: the log", r.stderr, "--tcp")
	noJailsLeft(t)
}

// A TLS client that is slower than the server-first window is still
// intercepted and each of its requests decided: not spliced unopened on
// the TCP verdict when the rule allows TCP to the host, nor refused when
// it does not.
func TestPrivilegedLateTLSClientUnderTCPIsStillDecidedPerRequest(t *testing.T) {
	s := newSite(t)
	for _, rule := range []string{
		"r.host === 'allowed.test' && (r.scheme === 'tcp' || r.path === '/ok')",
		"r.host === 'allowed.test' && r.scheme === 'https' && r.path === '/ok'",
	} {
		for _, tc := range []struct{ path, status, body string }{
			{"/ok", "200", testutil.HelloBody},
			{"/no", "403", "Request blocked by ebpfjail"},
		} {
			r := s.run(t, rule, []string{"--tcp"}, python(t), "-c", lateTLS, "allowed.test", "443", tc.path)
			first, _, _ := strings.Cut(r.stdout, "\n")
			if !strings.Contains(first, " "+tc.status+" ") || !strings.Contains(r.stdout, tc.body) {
				t.Errorf("rule %s, late ClientHello, GET %s: got %q, want status %s and %q (intercepted, decided per request)\n%s", rule, tc.path, r.stdout, tc.status, tc.body, r)
			}
		}
	}
	s.sawNo(t, "allowed.test /no")
	noJailsLeft(t)
}
