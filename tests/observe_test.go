package tests

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestPrivilegedRequestLogAndJSONEvents(t *testing.T) {
	requireTool(t, "dig")
	s := newSite(t)
	dir := t.TempDir()
	reqLog, jsonLog := filepath.Join(dir, "requests.log"), filepath.Join(dir, "events.jsonl")
	script := `curl -sS -o /dev/null http://allowed.test/a; curl -sS -o /dev/null https://denied.test/b
dig +short allowed.test
curl -sS --cacert /dev/null https://allowed.test/untrusted 2>/dev/null; true`
	r := s.run(t, allowRule, []string{"--request-log", reqLog, "--log-json", jsonLog}, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	lineRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [+-] [A-Z]+ \S+$`)
	b, _ := os.ReadFile(reqLog)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		if !lineRE.MatchString(l) {
			t.Errorf("request log line %q does not match %v", l, lineRE)
		}
	}
	contains(t, "request log", string(b), " + GET http://allowed.test/a")
	contains(t, "request log", string(b), " - GET https://denied.test/b")

	var sawCurl, sawDig, sawHandshake bool
	for _, e := range readEvents(t, jsonLog) {
		if e.V != event.Version || e.Time.IsZero() {
			t.Errorf("event without version or time: %+v", e)
		}
		switch {
		case e.Type == event.TypeRequest && e.Comm == "curl" && e.URL == "http://allowed.test/a":
			sawCurl = e.PID > 0 && strings.HasSuffix(e.Exe, "curl") && e.Verdict == event.Allow && e.Status == 200
		case e.Type == event.TypeDNS && e.Comm == "dig" && e.Name == "allowed.test":
			sawDig = e.PID > 0
		case e.Type == event.TypeConnection && e.Comm == "curl" && strings.HasPrefix(e.Reason, "tls handshake: client does not trust the CA: "):
			// Its own class: the client gave up on the CA (curl sends an
			// unknown-CA alert), not any handshake failure; the hint names
			// curl's own setting and the way around.
			sawHandshake = strings.Contains(e.Hint, "CURL_CA_BUNDLE") && strings.Contains(e.Hint, "--no-mitm allowed.test")
		}
	}
	if !sawCurl || !sawDig || !sawHandshake {
		t.Errorf("events: curl request %v, dig lookup %v, rejected handshake with hint %v; all:\n%s",
			sawCurl, sawDig, sawHandshake, readFile(jsonLog))
	}
}

func TestPrivilegedAuditSummarisesEachProcess(t *testing.T) {
	requireTool(t, "nc")
	s := newSite(t)
	dir := t.TempDir()
	jsonLog := filepath.Join(dir, "events.jsonl")
	script := `curl -sS -o /dev/null -w "curl %{http_code}\n" https://allowed.test/
` + python(t) + ` -c "import urllib.request; print('python', urllib.request.urlopen('http://denied.test/').status)"
echo hi | timeout 10 nc -q 1 ssh.test 22; true`
	args := []string{"--audit", "--log-json", jsonLog, "--user", "nobody",
		"--resolve", "allowed.test:" + s.h.IPv4.String(), "--resolve", "denied.test:" + s.h.IPv4.String(), "--", "sh", "-c", script}
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	contains(t, "curl let through", r.stdout, "curl 200")
	contains(t, "python let through", r.stdout, "python 200")
	for _, want := range []string{"curl", "python3", "allowed.test:443", "denied.test:80", "ssh.test:22"} {
		contains(t, "audit table", r.stderr, want)
	}
	var summary *event.Summary
	for _, e := range readEvents(t, jsonLog) {
		if e.Type == event.TypeSummary {
			summary = e.Summary
		}
	}
	if summary == nil {
		t.Fatalf("no summary event in %s", readFile(jsonLog))
	}
	var blocked bool
	for _, p := range summary.Processes {
		for _, b := range p.Blocked {
			blocked = blocked || strings.Contains(b, "ssh.test:22")
		}
	}
	if !blocked {
		t.Errorf("summary does not name the blocked nc attempt: %+v", summary)
	}
}

// server starts `ebpfjail --server` and returns its address once it listens.
func server(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--server"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	addr := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := regexp.MustCompile(`proxy listening on (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("ebpfjail --server never said where it listens")
		return ""
	}
}

func TestPrivilegedServerModeIsAnExplicitProxy(t *testing.T) {
	s := newSite(t)
	addr := server(t, []string{"SSL_CERT_FILE=" + s.ca.PEMPath}, "--listen", "127.0.0.1:0", "--listen-https", "127.0.0.1:0", "--js", allowRule,
		"--resolve", "allowed.test:"+s.h.IPv4.String(), "--resolve", "denied.test:"+s.h.IPv4.String())
	caPEM := filepath.Join(t.TempDir(), "ca.pem")
	out, err := exec.Command(bin, "ca", "export").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(caPEM, out, 0o644)
	for _, tc := range []struct{ url, want string }{
		{"http://allowed.test/", "200"}, {"https://allowed.test/", "200"},
		{"http://denied.test/", "403"}, {"https://denied.test/", "403"},
		{"http://" + addr + "/", "403"}, // the proxy itself: a loop
	} {
		got, _ := exec.Command("curl", "-sS", "-x", "http://"+addr, "--cacert", caPEM, "-o", "/dev/null", "-w", "%{http_code}", tc.url).Output()
		if string(got) != tc.want {
			t.Errorf("%s through --server: got %q, want %s", tc.url, got, tc.want)
		}
	}
	s.sawNo(t, "denied.test")
}

func TestPrivilegedWeakModeWorksWithoutRoot(t *testing.T) {
	s := newSite(t)
	home := sharedDir(t)
	// The whole run as nobody: no root, no BPF, the CA in nobody's own
	// config directory.
	weak := filepath.Join(home, "ebpfjail")
	b, _ := os.ReadFile(bin)
	os.WriteFile(weak, b, 0o755)
	script := `curl -sS -o /dev/null -w "http %{http_code}\n" http://allowed.test:8080/
curl -sS -o /dev/null -w "denied %{http_code}\n" http://denied.test:8080/
curl -sS -o /dev/null -w "https %{http_code}\n" https://allowed.test/`
	cmd := exec.Command(weak, "--weak", "--js", allowRule,
		"--resolve", "allowed.test:"+s.h.IPv4.String(), "--resolve", "denied.test:"+s.h.IPv4.String(), "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home+"/.config", "SSL_CERT_FILE="+s.ca.PEMPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b2, err := cmd.CombinedOutput()
	out := string(b2)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"http 200", "denied 403", "https 200"} {
		contains(t, "weak", out, want)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "ebpfjail", "ca")); err != nil {
		t.Errorf("the CA is not in the user's config directory: %v", err)
	}
}
