package tests

import (
	"crypto/tls"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// site is one test origin serving allowed.test and denied.test (both
// names resolve to it through its DNS server) over HTTP on 80 and 8080 and
// HTTPS on 443, with a certificate from a test CA ebpfjail is told to trust.
type site struct {
	h   *testutil.Host
	ca  *testutil.TestCA
	dns *testutil.DNSRecorder
}

func newSite(t *testing.T) *site {
	t.Helper()
	testutil.RequireRoot(t)
	s := &site{h: testutil.NewHost(t), ca: testutil.NewTestCA(t)}
	s.h.ServeHTTP(t, 80)
	s.h.ServeHTTP(t, 8080)
	s.h.ServeHTTPS(t, 443, s.ca, "allowed.test", "denied.test", s.h.IPv4.String(), s.h.IPv6.String())
	s.dns = s.h.ServeDNS(t, 53)
	return s
}

// run jails args under rule, with the site as DNS upstream and its names
// pinned for ebpfjail's own upstream connections.
func (s *site) run(t *testing.T, rule string, extra []string, command ...string) result {
	t.Helper()
	args := []string{"-v", "--user", "nobody", "--js", rule,
		"--resolve", "allowed.test:" + s.h.IPv4.String(),
		"--resolve", "denied.test:" + s.h.IPv4.String()}
	args = append(append(args, extra...), "--")
	return jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, append(args, command...)...)
}

// sawNo fails if the origin received a request for host.
func (s *site) sawNo(t *testing.T, host string) {
	t.Helper()
	for _, r := range s.h.Requests() {
		if strings.HasPrefix(r, host) {
			t.Errorf("the origin received a denied request: %q (all: %v)", r, s.h.Requests())
		}
	}
}

const allowRule = "r.host === 'allowed.test'"

func goClient(t *testing.T) string {
	t.Helper()
	dir := sharedDir(t)
	bin := filepath.Join(dir, "goclient")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/goclient").CombinedOutput(); err != nil {
		t.Fatalf("build goclient: %v\n%s", err, out)
	}
	return bin
}

func TestPrivilegedClientsGetAllowedAndDeniedAnswers(t *testing.T) {
	s := newSite(t)
	gc := goClient(t)
	node := `fetch(process.argv[1]).then(async r => { console.log("status " + r.status); console.log(await r.text()) }).catch(e => { console.log("ERR", e.cause || e); process.exit(1) })`
	py := `import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    print("status", r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print("status", e.code); print(e.read().decode())`
	clients := map[string]func(url string) []string{
		"curl":   func(u string) []string { return []string{"curl", "-sS", "-w", "\nstatus %{http_code}\n", u} },
		"node":   func(u string) []string { return []string{"node", "-e", node, u} },
		"python": func(u string) []string { return []string{python(t), "-c", py, u} },
		"go":     func(u string) []string { return []string{gc, u} },
	}
	for name, argv := range clients {
		for _, scheme := range []string{"http", "https"} {
			t.Run(name+"-"+scheme, func(t *testing.T) {
				if name == "node" {
					requireTool(t, "node")
				}
				r := s.run(t, allowRule, nil, argv(scheme+"://allowed.test/")...)
				if r.code != 0 {
					t.Fatalf("allowed: %s", r)
				}
				contains(t, "allowed", r.stdout, "status 200")
				contains(t, "allowed body", r.stdout, testutil.HelloBody)

				r = s.run(t, allowRule, nil, argv(scheme+"://denied.test/")...)
				contains(t, "denied", r.stdout, "status 403")
				contains(t, "denied body", r.stdout, "Request blocked by ebpfjail")
				s.sawNo(t, "denied.test")
			})
		}
	}
	noJailsLeft(t)
}

func TestPrivilegedHTTP2WebSocketAndGitWorkThroughTheMITM(t *testing.T) {
	s := newSite(t)
	t.Run("curl-http2", func(t *testing.T) {
		r := s.run(t, allowRule, nil, "curl", "-sS", "--http2", "-D", "-", "-o", "/dev/null", "-w", "version %{http_version}\n", "https://allowed.test/")
		contains(t, "client side", r.stdout, "version 2")
		contains(t, "origin side", r.stdout, "x-proto: HTTP/2.0")
	})
	gc := goClient(t)
	for _, u := range []string{"ws://allowed.test:8080/ws", "wss://allowed.test/ws"} {
		t.Run(u, func(t *testing.T) {
			r := s.run(t, allowRule, nil, gc, "ws", u)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			contains(t, "echo", r.stdout, "echo ping-over-websocket")
		})
	}
	t.Run("git-clone", func(t *testing.T) {
		requireTool(t, "git")
		repo := gitRepo(t)
		ln := s.h.Listen(t, "tcp", "[::]:8443")
		cert := s.ca.Leaf(t, "git.test")
		srv := &http.Server{Handler: &cgi.Handler{
			Path: mustLookPath(t, "git"), Args: []string{"http-backend"},
			Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo), "GIT_HTTP_EXPORT_ALL=1"},
		}}
		srv.TLSConfig = tlsConfigFor(cert)
		go srv.ServeTLS(ln, "", "")
		t.Cleanup(func() { srv.Close() })
		dst := filepath.Join(sharedDir(t), "clone")
		r := s.run(t, "r.host === 'git.test'", []string{"--resolve", "git.test:" + s.h.IPv4.String()},
			"git", "clone", "https://git.test:8443/"+filepath.Base(repo), dst)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		if b, err := os.ReadFile(filepath.Join(dst, "README")); err != nil || string(b) != "cloned through ebpfjail\n" {
			t.Errorf("cloned README: got %q, %v", b, err)
		}
	})
	noJailsLeft(t)
}

func TestPrivilegedEachRequestIsDecidedByItsOwnHost(t *testing.T) {
	s := newSite(t)
	t.Run("keep-alive", func(t *testing.T) {
		// Two requests on one connection: the second names a denied host.
		prog := `import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
c.connect()
first = c.sock
for host in ("allowed.test", "denied.test"):
    c.request("GET", "/", headers={"Host": host})
    same = c.sock is first
    r = c.getresponse(); r.read()
    print(host, r.status, "same-connection" if same else "new-connection")`
		r := s.run(t, allowRule, nil, python(t), "-c", prog, "allowed.test")
		contains(t, "first", r.stdout, "allowed.test 200 same-connection")
		contains(t, "second", r.stdout, "denied.test 403 same-connection")
		s.sawNo(t, "denied.test")
	})
	t.Run("sni-differs-from-host", func(t *testing.T) {
		r := s.run(t, allowRule, nil, "curl", "-sS", "-o", "/dev/null", "-w", "status %{http_code}\n", "-H", "Host: denied.test", "https://allowed.test/")
		contains(t, "status", r.stdout, "status 403")
		s.sawNo(t, "denied.test")
	})
	t.Run("wrong-ip-for-allowed-host", func(t *testing.T) {
		evil := testutil.NewHost(t)
		evil.ServeHTTP(t, 80)
		r := s.run(t, allowRule, nil, "curl", "-sS", "--resolve", "allowed.test:80:"+evil.IPv4.String(), "-D", "-", "http://allowed.test/")
		contains(t, "answer", r.stdout, testutil.HelloBody)
		if got := evil.Requests(); len(got) > 0 {
			t.Errorf("the address the child chose was reached: %v", got)
		}
	})
	noJailsLeft(t)
}

func TestPrivilegedAddressFormsAndPortsAreInterceptedAndDecided(t *testing.T) {
	s := newSite(t)
	v4, v6 := s.h.IPv4.String(), s.h.IPv6.String()
	for _, tc := range []struct{ name, rule, url string }{
		{"ipv4-literal", "r.host === '" + v4 + "'", "http://" + v4 + "/"},
		{"ipv6-literal", "r.host === '" + v6 + "'", "http://[" + v6 + "]/"},
		{"v4-mapped", "r.host === '::ffff:" + v4 + "' || r.host === '" + v4 + "'", "http://[::ffff:" + v4 + "]/"},
		{"https-ip", "r.host === '" + v4 + "'", "https://" + v4 + "/"},
		{"port-8080", "r.host === 'allowed.test' && r.port === 8080", "http://allowed.test:8080/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.run(t, tc.rule, nil, "curl", "-sS", "-w", "\nstatus %{http_code}\n", tc.url)
			contains(t, "allowed", r.stdout, "status 200")
			r = s.run(t, "false", nil, "curl", "-sS", "-w", "\nstatus %{http_code}\n", tc.url)
			contains(t, "denied", r.stdout, "status 403")
		})
	}
	noJailsLeft(t)
}

func TestPrivilegedProxyClientsAndNonHTTPAreHandled(t *testing.T) {
	s := newSite(t)
	// A client told to use a proxy: its CONNECT is steered to ebpfjail like
	// any connection, and each request inside the tunnel is decided.
	proxyURL := "http://" + s.h.IPv4.String() + ":3128"
	for _, tc := range []struct{ url, want string }{
		{"https://allowed.test/", "status 200"},
		{"https://denied.test/", "status 403"},
		{"http://allowed.test/", "status 200"},
		{"http://denied.test/", "status 403"},
	} {
		t.Run("proxy-"+tc.url, func(t *testing.T) {
			r := s.run(t, allowRule, nil, "curl", "-sS", "-x", proxyURL, "-p", "-o", "/dev/null", "-w", "status %{http_code}\n", tc.url)
			contains(t, "status", r.stdout, tc.want)
		})
	}
	s.sawNo(t, "denied.test")
	t.Run("ssh-like", func(t *testing.T) {
		prog := `import socket, sys
s = socket.create_connection((sys.argv[1], 22), timeout=10)
s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
try:
    print("got", s.recv(100))
except ConnectionResetError:
    print("reset")`
		r := s.run(t, "true", nil, python(t), "-c", prog, s.h.IPv4.String())
		contains(t, "client", r.stdout, "reset")
		contains(t, "log", r.stderr, "blocked tcp "+s.h.IPv4.String()+":22 (python3 pid")
	})
	noJailsLeft(t)
}

func TestPrivilegedUpstreamFailuresLimitsAndNoMITM(t *testing.T) {
	s := newSite(t)
	t.Run("upstream-down", func(t *testing.T) {
		r := s.run(t, "true", nil, "curl", "-sS", "-w", "\nstatus %{http_code}\n", "http://allowed.test:9/")
		contains(t, "status", r.stdout, "status 502")
	})
	t.Run("max-tx-bytes-413", func(t *testing.T) {
		before := len(s.h.Requests())
		r := s.run(t, "({allow: {max_tx_bytes: 1000}})", nil, "curl", "-sS", "-w", "\nstatus %{http_code}\n",
			"--data-binary", strings.Repeat("x", 5000), "http://allowed.test/echo")
		contains(t, "status", r.stdout, "status 413")
		if got := s.h.Requests()[before:]; len(got) > 0 {
			t.Errorf("upstream was contacted: %v", got)
		}
	})
	t.Run("max-tx-bytes-chunked", func(t *testing.T) {
		r := s.run(t, "({allow: {max_tx_bytes: 1000}})", nil, "curl", "-sS", "-H", "Transfer-Encoding: chunked",
			"-w", "\nstatus %{http_code}\n", "--data-binary", strings.Repeat("y", 5000), "http://allowed.test/echo")
		contains(t, "status", r.stdout, "status 200")
		if n := strings.Count(r.stdout, "y"); n == 0 || n >= 1000 {
			t.Errorf("echoed body: got %d bytes, want fewer than the 1000-byte limit (and some)", n)
		}
	})
	t.Run("no-mitm-shows-the-origin-certificate", func(t *testing.T) {
		// curl trusts only the test CA: it succeeds only with the origin's own certificate.
		r := s.run(t, "r.method === 'CONNECT' && r.host === 'allowed.test'", []string{"--no-mitm", "*.test"},
			"curl", "-sS", "--cacert", s.ca.PEMPath, "-w", "\nstatus %{http_code}\n", "https://allowed.test/")
		contains(t, "status", r.stdout, "status 200")
		contains(t, "rule saw CONNECT", r.stderr, "allowed CONNECT https://allowed.test:443 (curl pid")
	})
	noJailsLeft(t)
}

func TestPrivilegedCAKeyIsUnreadableAndTheCAIsReused(t *testing.T) {
	testutil.RequireRoot(t)
	a := jail(t, runOpts{}, "ca", "export")
	b := jail(t, runOpts{}, "ca", "export")
	if a.code != 0 || a.stdout == "" || a.stdout != b.stdout {
		t.Fatalf("ca export twice: got different or empty certificates\n%s\n%s", a, b)
	}
	p := jail(t, runOpts{}, "ca", "path")
	dir := filepath.Dir(strings.TrimSpace(p.stdout))
	r := jail(t, runOpts{}, "--user", "nobody", "--", "sh", "-c", "cat "+dir+"/*key* >/dev/null 2>&1 && echo READ-KEY; ls "+dir+" >/dev/null 2>&1 && echo LISTED; echo done")
	contains(t, "ran", r.stdout, "done")
	if strings.Contains(r.stdout, "READ-KEY") || strings.Contains(r.stdout, "LISTED") {
		t.Errorf("the jailed user reached the CA directory:\n%s", r)
	}
}

// gitRepo makes a bare repository with one commit, readable by everyone.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := sharedDir(t)
	work := filepath.Join(dir, "work")
	bare := filepath.Join(dir, "repo.git")
	for _, c := range [][]string{
		{"git", "init", "-q", work},
		{"sh", "-c", "echo 'cloned through ebpfjail' > " + work + "/README"},
		{"git", "-C", work, "add", "README"},
		{"git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@test", "commit", "-qm", "one"},
		{"git", "clone", "-q", "--bare", work, bare},
		{"chmod", "-R", "a+rX", dir},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	return bare
}

func mustLookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

func tlsConfigFor(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
}
