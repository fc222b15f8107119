package tests

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/attack"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// requireEngine skips unless a container engine answers its client as the
// user's shell would find it (DOCKER_HOST, the docker context). CI starts
// one (scripts/ci-dockerd), so these tests run there.
func requireEngine(t *testing.T) string {
	t.Helper()
	cli, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker client on PATH: install docker.io and start dockerd (scripts/ci-dockerd start)")
	}
	if out, err := exec.Command(cli, "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Skipf("no container engine reachable (DOCKER_HOST=%q): %s; scripts/ci-dockerd start runs one", os.Getenv("DOCKER_HOST"), strings.TrimSpace(string(out)))
	}
	return cli
}

// testImage builds an image with no registry: Debian's static busybox and
// the static goclient (and any extra files, path in the image → host
// file), imported from a tar. It is removed when t ends.
func testImage(t *testing.T, cli string, extra map[string]string) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	if out, _ := exec.Command("file", "-L", busybox).Output(); len(out) > 0 && !strings.Contains(string(out), "statically linked") {
		t.Skipf("%s is not static (apt-get install busybox-static)", busybox)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	copyFile(t, busybox, filepath.Join(root, "bin/busybox"))
	for _, l := range []string{"sh", "sleep", "cat", "echo", "trap"} {
		os.Symlink("busybox", filepath.Join(root, "bin", l))
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin/goclient"), "./testdata/goclient")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build goclient: %v\n%s", err, out)
	}
	for in, host := range extra {
		copyFile(t, host, filepath.Join(root, in))
	}
	var b [4]byte
	rand.Read(b[:])
	tag := "ebpfjail-test:" + hex.EncodeToString(b[:])
	imp := exec.Command(cli, "import", "-", tag)
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp.Stdin, _ = tar.StdoutPipe()
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	tar.Wait()
	t.Cleanup(func() { exec.Command(cli, "rmi", "-f", tag).Run() })
	return tag
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runContainer jails `docker run` with args under rule, the site's names
// pinned for ebpfjail's upstream connections, and JSON events in the
// returned file.
func (s *site) runContainer(t *testing.T, rule string, extra []string, dockerArgs ...string) (result, string) {
	t.Helper()
	events := eventsPath(t)
	args := []string{"-v", "--js", rule, "--log-json", events,
		"--resolve", "allowed.test:" + s.h.IPv4.String(),
		"--resolve", "denied.test:" + s.h.IPv4.String()}
	args = append(append(args, extra...), "--docker-run", "--")
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, append(args, dockerArgs...)...)
	return r, events
}

func TestPrivilegedDockerRunContainerGetsAllowedAndDeniedAnswersNamingItsProcess(t *testing.T) {
	cli := requireEngine(t)
	s := newSite(t)
	img := testImage(t, cli, nil)
	r, events := s.runContainer(t, allowRule, nil, "--rm", img, "/bin/goclient", "https://allowed.test/", "https://denied.test/")
	if r.code != 0 {
		t.Fatalf("got exit %d, want 0\n%s", r.code, r)
	}
	contains(t, "allowed request", r.stdout, "status 200")
	contains(t, "denied request", r.stdout, "status 403")
	s.sawNo(t, "denied.test")
	if !s.saw("allowed.test") {
		t.Errorf("the origin saw no request for allowed.test: %v", s.h.Requests())
	}
	var named bool
	for _, e := range readEvents(t, events) {
		if e.Type == event.TypeRequest && e.Host == "allowed.test" {
			named = e.PID > 1 && e.Exe == "/bin/goclient" && pidIsNotOurs(e.PID)
			if !named {
				t.Errorf("request event: got pid %d exe %q, want the container's process (a host pid, exe /bin/goclient)", e.PID, e.Exe)
			}
		}
	}
	if !named {
		t.Errorf("no request event for allowed.test in %s", events)
	}
}

// pidIsNotOurs reports that pid is a host pid other than the test's: the
// kernel records pids as the host sees them, not the container's 1.
func pidIsNotOurs(pid uint32) bool { return int(pid) != os.Getpid() }

// saw reports whether the origin received a request for host.
func (s *site) saw(host string) bool {
	for _, r := range s.h.Requests() {
		if strings.HasPrefix(r, host) {
			return true
		}
	}
	return false
}

func TestPrivilegedDockerRunContainerHasOnlyLoopbackAndStillReachesAllowedHosts(t *testing.T) {
	cli := requireEngine(t)
	s := newSite(t)
	img := testImage(t, cli, nil)
	// The default and --network none: a namespace with loopback only, no
	// route anywhere; ebpfjail listens on that loopback.
	for _, net := range [][]string{nil, {"--network", "none"}} {
		args := append(append([]string{"--rm"}, net...), img, "/bin/sh", "-c",
			"ls /sys/class/net; cat /proc/net/route; /bin/goclient https://allowed.test/ https://"+s.h.IPv4.String()+"/")
		r, _ := s.runContainer(t, "r.host === 'allowed.test'", nil, args...)
		if r.code != 0 {
			t.Fatalf("%v: got exit %d, want 0\n%s", net, r.code, r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) < 4 || lines[0] != "lo" || !strings.HasPrefix(lines[1], "Iface") || !strings.HasPrefix(lines[2], "status 200") {
			t.Errorf("%v: got %q, want only lo, an empty route table and status 200 for allowed.test", net, lines)
		}
		contains(t, "the test host by address (the rule denies it)", r.stdout, "status 403")
	}
	s.sawNo(t, s.h.IPv4.String())
	if !s.saw("allowed.test") {
		t.Errorf("the origin saw no request for allowed.test: %v", s.h.Requests())
	}
}

func TestPrivilegedDockerRunNetworkHostUsesTheHostsLoopbackListener(t *testing.T) {
	cli := requireEngine(t)
	s := newSite(t)
	img := testImage(t, cli, nil)
	r, _ := s.runContainer(t, allowRule, nil, "--rm", "--network", "host", img, "/bin/goclient", "https://allowed.test/", "https://denied.test/")
	if r.code != 0 {
		t.Fatalf("got exit %d, want 0\n%s", r.code, r)
	}
	contains(t, "allowed request", r.stdout, "status 200")
	contains(t, "denied request", r.stdout, "status 403")
	s.sawNo(t, "denied.test")
}

func TestPrivilegedDockerRunRefusesWhatCannotBeJailedWithOneLine(t *testing.T) {
	cli := requireEngine(t)
	before := containerCount(t, cli)
	for _, opts := range [][]string{
		{"--privileged"},
		{"--cap-add", "NET_ADMIN"},
		{"--cap-add=SYS_ADMIN"},
		{"--cap-add", "BPF"},
		{"--cap-add", "ALL"},
		{"--pid", "host"},
		{"--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		{"-v", "/var/run/docker.sock:/var/run/docker.sock"},
		{"--network", "container:other"},
		{"--network", "bridge"},
	} {
		args := append(append([]string{"--docker-run", "--", "--rm"}, opts...), "no-such-image-ebpfjail-test", "true")
		r := jail(t, runOpts{}, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ebpfjail: error: --docker-run: ") || !strings.HasPrefix(lines[1], "ebpfjail: hint: ") {
			t.Errorf("%q: got exit %d stderr %q, want exit 2, one error line and one hint", opts, r.code, r.stderr)
		}
	}
	if after := containerCount(t, cli); after != before {
		t.Errorf("containers: got %d after the refusals, want %d (none started)", after, before)
	}
}

// containerCount is how many containers the engine has, running or not.
func containerCount(t *testing.T, cli string) int {
	t.Helper()
	out, err := exec.Command(cli, "ps", "-aq").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return len(strings.Fields(string(out)))
}

func TestPrivilegedDockerRunKilledSupervisorLeavesTheContainerRefusedUntilCleanup(t *testing.T) {
	cli := requireEngine(t)
	testutil.SweepExclusive(t) // the dead supervisor's jail waits for this test's --cleanup
	s := newSite(t)
	img := testImage(t, cli, nil)
	dir := sharedDir(t)
	name := "ebpfjail-test-" + filepath.Base(dir)
	script := `while true; do /bin/goclient http://allowed.test:8080/ >> /out/log 2>&1; sleep 0.1; done`
	cmd := ebpfjail(t, "-v", "--js", "true", "--resolve", "allowed.test:"+s.h.IPv4.String(),
		"--docker-run", "--", "--rm", "--name", name, "-v", dir+":/out", img, "/bin/sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ebpfjail(t, "--cleanup").Run()
		exec.Command(cli, "rm", "-f", name).Run()
	})
	log := filepath.Join(dir, "log")
	waitFor(t, "a successful fetch", func() bool { return strings.Contains(readFile(log), "status 200") })
	out, err := exec.Command(cli, "inspect", "-f", "{{.State.Pid}}", name).Output()
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		t.Fatalf("container's pid: %q %v", out, err)
	}

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := strings.Count(readFile(log), "\n")
	waitFor(t, "three fetches after the kill", func() bool { return strings.Count(readFile(log), "\n") >= before+3 })
	after := strings.Split(strings.TrimSpace(readFile(log)), "\n")[before:]
	for _, line := range after {
		if !strings.Contains(line, "connection refused") {
			t.Errorf("fetch after the supervisor died: got %q, want connection refused; all: %q", line, after)
			break
		}
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("the container (pid %d) died with ebpfjail; want it alive until --cleanup", pid)
	}
	cleanupRemoves(t, "the container's process", pid)
	waitFor(t, "the --rm container removed", func() bool {
		return exec.Command(cli, "inspect", name).Run() != nil
	})
	noJailsLeft(t)
}

func TestPrivilegedDockerRunExitStatusAndCtrlCPassThrough(t *testing.T) {
	cli := requireEngine(t)
	requireTool(t, "tmux")
	s := newSite(t)
	img := testImage(t, cli, nil)
	r, _ := s.runContainer(t, "true", nil, "--rm", img, "/bin/sh", "-c", "exit 7")
	if r.code != 7 {
		t.Errorf("exit status: got %d, want the container's 7\n%s", r.code, r)
	}

	// Without a terminal: SIGTERM to ebpfjail reaches the container's
	// process through the engine's client.
	dir := sharedDir(t)
	term := ebpfjail(t, "--docker-run", "--", "--rm", "-v", dir+":/out", img, "/bin/sh", "-c",
		`trap "echo term > /out/got; exit 9" TERM; echo > /out/ready; while true; do sleep 0.1; done`)
	if err := term.Start(); err != nil {
		t.Fatal(err)
	}
	defer term.Process.Kill()
	waitFor(t, "the container's trap set", func() bool { return readFile(filepath.Join(dir, "ready")) != "" })
	term.Process.Signal(syscall.SIGTERM)
	term.Wait()
	if code := term.ProcessState.ExitCode(); code != 9 || readFile(filepath.Join(dir, "got")) != "term\n" {
		t.Errorf("after SIGTERM: got exit %d and %q from the trap, want 9 and \"term\"", code, readFile(filepath.Join(dir, "got")))
	}

	m := newTmux(t, "ebpfjail-docker-test")
	script := `trap "echo GOT-INT; exit 5" INT; echo READY; while true; do sleep 1; done`
	cmd := fmt.Sprintf("%s --docker-run -- --rm -it %s /bin/sh -c '%s'; echo EBPFJAIL-EXIT=$?; sleep 60", bin, img, script)
	m.run("new-session", "-d", "-s", "jail", "-x", "120", "-y", "30", "env", owner(t), "DOCKER_HOST="+os.Getenv("DOCKER_HOST"), "sh", "-c", cmd)
	m.waitScreen("READY")
	m.run("send-keys", "-t", "jail", "C-c")
	m.waitScreen("EBPFJAIL-EXIT=5")
	contains(t, "the container's trap", m.screen(), "GOT-INT")
	noJailsLeft(t)
}

// containerAttempts are the attempts of check --attack that a container
// can make as well as a command: other sockets, UDP and DNS out.
var containerAttempts = []string{"raw-socket", "raw6-socket", "packet-socket", "icmp-ping", "icmp6-ping",
	"other-families", "mptcp", "sctp", "udp", "quic", "dns-exfil"}

func TestPrivilegedDockerRunUDPRawAndDNSExfiltrationFromTheContainerAreRefused(t *testing.T) {
	cli := requireEngine(t)
	h := testutil.NewHost(t)
	rr := &rawRecorder{}
	rr.serveUDP(h.ListenPacket(t, "udp", "[::]:9"), "udp/9")
	rr.serveUDP(h.ListenPacket(t, "udp", "[::]:443"), "udp/443")
	dns := h.ServeDNS(t, 53)
	// The attempts run as ebpfjail's own hidden command, built static so
	// that it runs in the image.
	attacker := filepath.Join(t.TempDir(), "ebpfjail")
	build := exec.Command("go", "build", "-o", attacker, "../cmd/ebpfjail")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static ebpfjail: %v\n%s", err, out)
	}
	img := testImage(t, cli, map[string]string{"bin/ebpfjail": attacker})
	spec := attack.Spec{V4: h.IPv4, V6: h.IPv6, HTTP: 80, HTTPS: 443, UDP: 9, QUIC: 443, DNS: 53}
	for _, net := range []string{"none", "host"} {
		r := jail(t, runOpts{}, "--js", attack.RuleFor(spec), "--dns", "forward", "--dns-upstream", h.IPv4.String()+":53",
			"--docker-run", "--", "--rm", "--network", net, img,
			"/bin/ebpfjail", attack.OnlyArg, strings.Join(containerAttempts, ","), spec.Encode())
		got := attemptStatuses(jsonOutcomes(t, r.stdout))
		for _, a := range containerAttempts {
			if st := got[a]; len(st) != 1 || st[0] != "blocked" {
				t.Errorf("--network %s: %s: got %v, want [blocked]\n%s", net, a, st, r)
			}
		}
	}
	if got := rr.all(); len(got) > 0 {
		t.Errorf("the test host received %q, want nothing", got)
	}
	if q := dns.Queries(); len(q) > 0 {
		t.Errorf("the test host's DNS server received %v, want nothing", q)
	}
}

// jsonOutcomes turns the attempts' JSON lines into the report's
// "STATUS NAME detail" lines attemptStatuses reads.
func jsonOutcomes(t *testing.T, out string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var o attack.Outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("attempt output is not an outcome: %q", line)
		}
		fmt.Fprintf(&b, "%s %s %s\n", o.Status, o.Name, o.Detail)
	}
	return b.String()
}

func TestPrivilegedCheckSaysWhichContainerEngineAnswers(t *testing.T) {
	requireEngine(t)
	r := jail(t, runOpts{}, "check")
	contains(t, "check with an engine", r.stdout, "ok    container engine: docker ")
	r = jail(t, runOpts{env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}}, "check")
	contains(t, "check without one", r.stdout, "note  container engine: ")
	contains(t, "check without one", r.stdout, "/nonexistent/docker.sock")
}

// A container, like a command, gets a secret's placeholder only: the real
// value reaches the secret's host in the URL, the placeholder sent to
// another host is misuse, and --audit lists the container's process.
func TestPrivilegedDockerRunContainerGetsOnlyTheSecretsPlaceholder(t *testing.T) {
	cli := requireEngine(t)
	s := newSite(t)
	img := testImage(t, cli, nil)
	const real = "sk-test-4f9c2a7e1b8d3c6f0a5e9b2d7c1f4a8e"
	events := eventsPath(t)
	args := []string{"-v", "--audit", "--js", allowRule, "--log-json", events,
		"--resolve", "allowed.test:" + s.h.IPv4.String(), "--resolve", "denied.test:" + s.h.IPv4.String(),
		"--secret", "APIKEY=allowed.test", "--docker-run", "--", "--rm", img,
		"sh", "-c", `echo "key $APIKEY"; /bin/goclient "https://allowed.test/k/$APIKEY"; /bin/goclient "https://denied.test/k/$APIKEY"`}
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath, "APIKEY=" + real}}, args...)
	if strings.Contains(r.stdout+r.stderr, real) || strings.Contains(readFile(events), real) {
		t.Errorf("the real value is in the container's output, ebpfjail's or the events:\n%s", r)
	}
	var placeholder string
	for _, l := range strings.Split(r.stdout, "\n") {
		if k, ok := strings.CutPrefix(l, "key "); ok {
			placeholder = k
		}
	}
	if len(placeholder) != len(real) || placeholder == real {
		t.Fatalf("the container's APIKEY: got %q, want a placeholder as long as the real value\n%s", placeholder, r)
	}
	if !contains1(s.h.Requests(), "allowed.test /k/"+real) {
		t.Errorf("the origin got %q, want allowed.test /k/ with the real value", s.h.Requests())
	}
	s.sawNo(t, "denied.test")
	var misuse bool
	for _, e := range readEvents(t, events) {
		misuse = misuse || (e.Type == event.TypeSecretMisuse && e.Secret == "APIKEY" && e.Host == "denied.test" && e.Exe == "/bin/goclient")
	}
	if !misuse {
		t.Errorf("no secret_misuse event for denied.test by /bin/goclient in:\n%s", readFile(events))
	}
	contains(t, "the audit table", r.stderr, "goclient")
}
