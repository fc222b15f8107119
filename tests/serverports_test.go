package tests

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort is a loopback port nothing listens on (for the bind variables).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// nobodyCopy is a copy of the binary nobody can run, with HOME in a
// directory of its own (its CA goes to HOME/.config/ebpfjail/ca).
func nobodyCopy(t *testing.T) (binary, home string, env []string) {
	home = sharedDir(t)
	binary = filepath.Join(home, "ebpfjail")
	b, _ := os.ReadFile(bin)
	os.WriteFile(binary, b, 0o755)
	return binary, home, append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME=")
}

func nobodyCmd(binary string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// --server listens where httpjail's variables say: HTTP on one port, and on
// the other CONNECT and TLS sent directly (for its server name, on 443).
// Run without root, its CA is the one 'ca path' names for that user.
func TestPrivilegedServerServesHTTPAndHTTPSPortsFromHttpjailsVariables(t *testing.T) {
	s := newSite(t)
	binary, home, env := nobodyCopy(t)
	p1, p2 := freePort(t), freePort(t)
	cmd := nobodyCmd(binary, append(env, "HTTPJAIL_HTTP_BIND=127.0.0.1:"+p1, "HTTPJAIL_HTTPS_BIND=127.0.0.1:"+p2, "SSL_CERT_FILE="+s.ca.PEMPath),
		"--server", "--js", allowRule, "--resolve", "allowed.test:"+s.h.IPv4.String(), "--resolve", "denied.test:"+s.h.IPv4.String())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "proxy listening on") {
				line <- sc.Text()
			}
		}
	}()
	var ready string
	select {
	case ready = <-line:
	case <-time.After(20 * time.Second):
		t.Fatal("--server never said where it listens")
	}
	caPath := filepath.Join(home, ".config", "ebpfjail", "ca", "ca-cert.pem")
	want := "ebpfjail: proxy listening on 127.0.0.1:" + p1 + " (HTTP and CONNECT) and 127.0.0.1:" + p2 + " (CONNECT and direct TLS); CA: " + caPath
	if ready != want {
		t.Errorf("ready line: got %q, want %q", ready, want)
	}
	if out, err := nobodyCmd(binary, env, "ca", "path").Output(); err != nil || string(out) != caPath+"\n" {
		t.Errorf("ca path as nobody: got %q, %v; want %q, the CA --server uses", out, err, caPath)
	}
	pem, _ := os.ReadFile(caPath)
	if out, err := nobodyCmd(binary, env, "ca", "export").Output(); err != nil || len(pem) == 0 || string(out) != string(pem) {
		t.Errorf("ca export as nobody: got %q, %v; want the certificate in %s", out, err, caPath)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"HTTP port, absolute-form", []string{"-x", "http://127.0.0.1:" + p1, "http://allowed.test/http-port"}, "200"},
		{"HTTPS port, CONNECT", []string{"-x", "http://127.0.0.1:" + p2, "https://allowed.test/connect"}, "200"},
		{"HTTPS port, direct TLS", []string{"--resolve", "allowed.test:" + p2 + ":127.0.0.1", "https://allowed.test:" + p2 + "/direct"}, "200"},
		{"HTTPS port, direct TLS denied", []string{"--resolve", "denied.test:" + p2 + ":127.0.0.1", "https://denied.test:" + p2 + "/direct"}, "403"},
		{"HTTPS port, plain HTTP", []string{"-x", "http://127.0.0.1:" + p2, "http://allowed.test/plain"}, "200"},
	} {
		args := append([]string{"-sS", "--max-time", "10", "--cacert", caPath, "-o", "/dev/null", "-w", "%{http_code}"}, tc.args...)
		got, err := exec.Command("curl", args...).Output()
		if string(got) != tc.want {
			t.Errorf("%s: curl %q: got %q (%v), want %s", tc.name, tc.args, got, err, tc.want)
		}
	}
	for _, path := range []string{"/http-port", "/connect", "/direct", "/plain"} {
		if !slices.ContainsFunc(s.h.Requests(), func(r string) bool { return regexp.MustCompile(`^allowed\.test(:\d+)? ` + path + `$`).MatchString(r) }) {
			t.Errorf("the origin never received %s (got %q)", path, s.h.Requests())
		}
	}
	s.sawNo(t, "denied.test")
}
