package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestPrivilegedExitStatusFollowsTheCommand(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("#!/bin/sh\necho hi\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"own code", []string{"sh", "-c", "exit 7"}, 7},
		{"success", []string{"true"}, 0},
		{"signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"timeout", []string{"--timeout", "0.5", "--", "sleep", "30"}, 124},
		{"not found", []string{"no-such-command-ebpfjail"}, 127},
		{"not executable", []string{plain}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--user", "nobody"}, tc.args...)
			if tc.args[0] != "--timeout" {
				args = append([]string{"--user", "nobody", "--"}, tc.args...)
			}
			r := jail(t, runOpts{}, args...)
			if r.code != tc.want {
				t.Errorf("exit status: got %d, want %d\n%s", r.code, tc.want, r)
			}
			if (tc.want == 126 || tc.want == 127) && !strings.HasPrefix(r.stderr, "ebpfjail: error: ") {
				t.Errorf("stderr: got %q, want one 'ebpfjail: error:' line", r.stderr)
			}
		})
	}
	noJailsLeft(t)
}

func TestPrivilegedChildRunsAsSudoUserWithoutPrivilegesOrInheritedFDs(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	suid := filepath.Join(dir, "suid-id")
	b, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Skip("no /usr/bin/id")
	}
	os.WriteFile(suid, b, 0o755)
	// os.ModeSetuid, not 0o4000: os.Chmod ignores the raw bit.
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	// Without no_new_privs the setuid bit works here (else the test proves nothing).
	if out, _ := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", suid, "-u").Output(); strings.TrimSpace(string(out)) != "0" {
		t.Skipf("setuid binaries do not work in %s (got euid %q)", dir, out)
	}
	extra, _ := os.Open("/dev/null")
	defer extra.Close()
	cg := testutil.Cgroup2Mount(t)
	script := fmt.Sprintf(`echo uid=$(id -u) gid=$(id -g) home=$HOME user=$USER
echo suid=$(%s -u)
echo $$ > %s/cgroup.procs 2>/dev/null && echo ESCAPED
grep NoNewPrivs /proc/self/status
sleep 5 & sleep 0.3; echo fds: $(ls /proc/$!/fd); kill $!`, suid, cg)
	r := jail(t, runOpts{
		env:   []string{"SUDO_UID=65534", "SUDO_GID=65534", "SUDO_USER=nobody"},
		setup: func(c *exec.Cmd) { c.ExtraFiles = []*os.File{extra, extra} }, // fds 3 and 4
	}, "--", "sh", "-c", script)
	// The descriptors are read off a child the shell forked (sleep): the
	// shell's own list would show the pipe of the $(...) it is reading.
	// Once it has started: while the dynamic loader starts sleep, it holds
	// the libraries it opens as fd 3 (seen under load).
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	contains(t, "identity", r.stdout, "uid=65534 gid=65534 home=/nonexistent user=nobody")
	contains(t, "setuid binary", r.stdout, "suid=65534")
	contains(t, "no_new_privs", r.stdout, "NoNewPrivs:\t1")
	if strings.Contains(r.stdout, "ESCAPED") {
		t.Errorf("the child moved itself out of the jail's cgroup:\n%s", r)
	}
	if m := regexp.MustCompile(`fds: (.*)`).FindStringSubmatch(r.stdout); m == nil || m[1] != "0 1 2" {
		t.Errorf("inherited fds: got %q, want \"0 1 2\"", m)
	}
}

func TestPrivilegedNonDNSUDPAndRawSocketsFailWithEPERM(t *testing.T) {
	testutil.RequireRoot(t)
	prog := `
import socket, errno
def try_(what, f):
    try:
        f(); print(what, "ALLOWED")
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
try_("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("203.0.113.99", 443)))
try_("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).connect(("2001:db8:eb::99", 443)))
try_("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
`
	// Root here: an unprivileged user could not open a raw socket anyway.
	r := jail(t, runOpts{}, "--user", "root", "--", python(t), "-c", prog)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, what := range []string{"udp", "udp6", "raw"} {
		contains(t, what, r.stdout, what+" EPERM")
	}
	contains(t, "root warning", r.stderr, "ebpfjail: warning: the command runs as root")
}

func TestPrivilegedDNSFromAnyServerAddressReachesTheShim(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "dig")
	upstream := testutil.NewHost(t) // where ebpfjail forwards
	other := testutil.NewHost(t)    // the server the child asks for
	up := upstream.ServeDNS(t, 53)
	asked := other.ServeDNS(t, 53)
	for _, tc := range []struct{ name, server, proto string }{
		{"udp4", other.IPv4.String(), "+notcp"},
		{"tcp4", other.IPv4.String(), "+tcp"},
		{"udp6", other.IPv6.String(), "+notcp"},
		{"tcp6", other.IPv6.String(), "+tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name + ".example.test"
			r := jail(t, runOpts{}, "-v", "--user", "nobody", "--dns", "forward", "--js", "true", "--dns-upstream", upstream.IPv4.String()+":53", "--",
				"dig", "@"+tc.server, tc.proto, "+tries=1", "+time=5", "+short", name, "A")
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			// The upstream's answer (its own address) came back to dig.
			contains(t, "answer", r.stdout, upstream.IPv4.String())
			contains(t, "shim log", r.stderr, "dns A "+name+" ")
			contains(t, "shim log process", r.stderr, "(dig pid ")
		})
	}
	for _, q := range asked.Queries() {
		t.Errorf("the server the child named was reached directly: %v", q)
	}
	if got := len(up.Queries()); got < 4 {
		t.Errorf("upstream queries: got %d, want 4", got)
	}
	for _, q := range up.Queries() {
		t.Logf("upstream saw %v", q)
	}
}

func TestPrivilegedKilledSupervisorFailsClosedUntilCleanup(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	// The jail of the killed supervisor must wait for this test's --cleanup.
	testutil.SweepExclusive(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 8080)
	dir := sharedDir(t)
	log := filepath.Join(dir, "log")
	url := fmt.Sprintf("http://%s:8080/", h.IPv4)
	// One fetch every 100 ms, each result on its own line.
	script := fmt.Sprintf(`while true; do curl -s -m 2 --noproxy "*" -o /dev/null -w "%%{http_code}\n" %s >> %s; sleep 0.1; done`, url, log)
	cmd := ebpfjail(t, "-v", "--user", "nobody", "--js", "true", "--", "sh", "-c", script)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the test ends what it started: ebpfjail by PID,
	// the jail through --cleanup.
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ebpfjail(t, "--cleanup").Run()
	})
	var childPID int
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := regexp.MustCompile(`command started pid=(\d+)`).FindStringSubmatch(sc.Text()); m != nil {
			fmt.Sscan(m[1], &childPID)
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if childPID == 0 {
		t.Fatal("ebpfjail never logged the command's pid")
	}
	waitFor(t, "a successful fetch", func() bool { return strings.Contains(readFile(log), "200") })

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := strings.Count(readFile(log), "\n")
	waitFor(t, "three fetches after the kill", func() bool { return strings.Count(readFile(log), "\n") >= before+3 })
	after := strings.Split(strings.TrimSpace(readFile(log)), "\n")[before:]
	for _, code := range after {
		if code != "000" {
			t.Errorf("fetch after the supervisor died: got HTTP %s, want 000 (refused); all: %v", code, after)
			break
		}
	}
	if syscall.Kill(childPID, 0) != nil {
		t.Fatalf("the command (pid %d) died with ebpfjail; want it alive until --cleanup", childPID)
	}

	cleanupRemoves(t, "the command", childPID)
	noJailsLeft(t)
	out, _ := ebpfjail(t, "--cleanup").CombinedOutput()
	contains(t, "second --cleanup", string(out), "no jails to clean up")
}

// cleanupRemoves runs --cleanup, which must remove the jail of a dead
// supervisor, and with it what (pid) ran in the jail.
func cleanupRemoves(t *testing.T, what string, pid int) {
	t.Helper()
	out, err := ebpfjail(t, "--cleanup").CombinedOutput()
	if err != nil {
		t.Fatalf("--cleanup: %v\n%s", err, out)
	}
	contains(t, "--cleanup output", string(out), "removed jail")
	if !gone(pid) {
		t.Errorf("%s (pid %d) survived --cleanup", what, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gone waits briefly for pid to exit: a killed orphan may stay a zombie
// until init reaps it.
func gone(pid int) bool {
	for range 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestPrivilegedWithoutACgroup2MountEbpfjailMountsItsOwn(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "unshare")
	cg := testutil.Cgroup2Mount(t)
	// A private mount namespace without the cgroup2 mount, as under
	// `ip netns exec` (which remounts /sys).
	script := fmt.Sprintf(`umount %s || exit 99
grep -q cgroup2 /proc/mounts && exit 98
%s --user nobody -- sh -c 'grep ^0:: /proc/self/cgroup'`, cg, bin)
	r := jail(t, runOpts{setup: func(c *exec.Cmd) {
		c.Path, _ = exec.LookPath("unshare")
		c.Args = []string{"unshare", "-m", "--propagation", "private", "sh", "-c", script}
	}})
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	contains(t, "child's cgroup", r.stdout, "0::/ebpfjail/")
	noJailsLeft(t)
}

func TestPrivilegedSignalsAreForwardedToTheCommand(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	ready := filepath.Join(dir, "ready")
	script := fmt.Sprintf(`trap 'echo got-term; exit 3' TERM; touch %s; while true; do sleep 0.05; done`, ready)
	var out strings.Builder
	cmd := ebpfjail(t, "--user", "nobody", "--", "sh", "-c", script)
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, "the command to start", func() bool { _, err := os.Stat(ready); return err == nil })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("got exit %d and output %q, want 3 and got-term (the command's own handling)", code, out.String())
	}
	noJailsLeft(t)
}

// A closed stderr (ebpfjail -vv 2>&1 | head -1) must not kill ebpfjail in
// the middle of a jail: it would leave the jail for --cleanup. Writes to
// the broken pipe fail; ebpfjail tears down and exits with the command.
func TestPrivilegedBrokenStderrPipeStillTearsDown(t *testing.T) {
	testutil.RequireRoot(t)
	cmd := ebpfjail(t, "-vv", "--user", "nobody", "--", "sh", "-c", "sleep 0.5; exit 4")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	// The first line, then the reader goes away: every later log line
	// (-vv logs the teardown) meets a broken pipe.
	bufio.NewReader(stderr).ReadString('\n')
	stderr.Close()
	cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Errorf("ebpfjail died of %v, want exit 4 after its teardown", ws.Signal())
	} else if ws.ExitStatus() != 4 {
		t.Errorf("exit status: got %d, want 4 (the command's)", ws.ExitStatus())
	}
	noJailsLeft(t)
}
