package tests

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// recordUnixStream listens at path (anyone may connect) and records in rr
// one line per connection: "<socket name> <tag sent>", or "<name> -" for a
// connection that sent nothing.
func recordUnixStream(t *testing.T, rr *rawRecorder, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	t.Cleanup(func() { ln.Close() })
	name := filepath.Base(path)
	testutil.Serve(ln, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line = strings.TrimSpace(line); line == "" {
			line = "-"
		}
		rr.add(name + " " + line)
	})
}

// recordUnixDgram binds a datagram socket at path and records each
// datagram in rr as "<socket name> <datagram>".
func recordUnixDgram(t *testing.T, rr *rawRecorder, path string) {
	t.Helper()
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	t.Cleanup(func() { pc.Close() })
	rr.serveUDP(pc, filepath.Base(path))
}

// settle waits until rr has n records or two quiet seconds passed.
func settle(rr *rawRecorder, n int) []string {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && len(rr.all()) < n {
		time.Sleep(20 * time.Millisecond)
	}
	return rr.all()
}

// spellingClient tries every spelling of each socket it is given: stream
// sockets with connect(), datagram sockets with sendto(), each sending
// "<prefix>:<spelling>". What it prints only helps reading a failure: the
// recorders judge.
const spellingClient = `import errno, json, os, shutil, socket, sys, tempfile
cfg = json.loads(sys.argv[1])
tmp = tempfile.mkdtemp()
if cfg.get("unmask"):
    # A user and mount namespace of its own, where it may try to unmount.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(0x10000000 | 0x00020000) != 0:
        print("unshare", os.strerror(ctypes.get_errno()))
    else:
        open("/proc/self/uid_map", "w").write("%d %d 1" % (uid, uid))
        open("/proc/self/setgroups", "w").write("deny")
        open("/proc/self/gid_map", "w").write("%d %d 1" % (gid, gid))
    for kind, p in cfg["sockets"]:
        if libc.umount2(p.encode(), 2) != 0:
            print("umount", p, os.strerror(ctypes.get_errno()))
        else:
            print("umount", p, "UNMOUNTED")
def spellings(p):
    d, base = os.path.dirname(p), os.path.basename(p)
    link = os.path.join(tmp, base + ".link")
    os.symlink(p, link)
    s = {"exact": p, "double-slash": "/" + p, "dot": d + "/./" + base,
         "dotdot": d + "/../" + os.path.basename(d) + "/" + base,
         "symlink": link, "proc-self-root": "/proc/self/root" + p,
         "relative": base}
    if os.path.realpath("/var/run") == "/run" and p.startswith("/run/"):
        s["var-run"] = "/var" + p
    try:
        s["proc-self-fd"] = "/proc/self/fd/%d" % os.open(p, os.O_PATH)
    except OSError as e:
        print("open O_PATH", p, errno.errorcode.get(e.errno, e.errno))
    if cfg.get("alias_dir"):
        s["bind-alias"] = os.path.join(cfg["alias_dir"], base)
    for name, pid in cfg["pids"].items():
        s[name] = "/proc/%d/root%s" % (pid, p)
    return s
for kind, p in cfg["sockets"]:
    for name, addr in spellings(p).items():
        os.chdir(os.path.dirname(p) if name == "relative" else "/")
        tag = ("%s:%s" % (cfg["prefix"], name)).encode()
        typ = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_UNIX, typ)
        try:
            if kind == "stream":
                s.connect(addr); s.sendall(tag + b"\n")
            else:
                s.sendto(tag, addr)
            print(kind, name, "SENT")
        except OSError as e:
            print(kind, name, errno.errorcode.get(e.errno, e.errno))
        s.close()
for pid in cfg["pids"].values():
    print("pid-root", pid, "visible" if os.access("/proc/%d/root/" % pid, os.F_OK) else "hidden")
shutil.rmtree(tmp, ignore_errors=True)`

// spellingCfg is spellingClient's argument.
type spellingCfg struct {
	Prefix  string         `json:"prefix"`
	Sockets [][2]string    `json:"sockets"` // kind ("stream", "dgram"), path
	PIDs    map[string]int `json:"pids"`    // spelling name -> pid whose /proc/PID/root to go through
	// AliasDir shows the sockets' directory through a bind mount.
	AliasDir string `json:"alias_dir,omitempty"`
	// Unmask: first try to unmount the sockets' masks in a user namespace.
	Unmask bool `json:"unmask,omitempty"`
}

func (c spellingCfg) arg(t *testing.T) string {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// spellings is the setup of TestPrivilegedDeniedUnixSocketIsUnreachableByAnySpelling:
// recording sockets in a directory of /run, the same directory through a
// bind mount, and outside processes whose /proc/PID/root leads there.
type spellings struct {
	py                 string
	engine, dgram, app string
	alias              string
	rec                *rawRecorder
	pids               map[string]int
	sockets            [][2]string // the denied ones: network, path
	names              []string    // the spellings every client tries
}

// jailedUID is the user the outside processes and the control run as.
const jailedUID = 65534

func newSpellings(t *testing.T) *spellings {
	t.Helper()
	f := &spellings{py: python(t), rec: &rawRecorder{}}
	rnd := make([]byte, 6)
	rand.Read(rnd)
	dir := "/run/ebpfjail-test-" + hex.EncodeToString(rnd)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f.engine, f.dgram, f.app = filepath.Join(dir, "engine.sock"), filepath.Join(dir, "engine.dgram"), filepath.Join(dir, "app.sock")
	recordUnixStream(t, f.rec, f.engine)
	recordUnixDgram(t, f.rec, f.dgram)
	recordUnixStream(t, f.rec, f.app)
	// The same directory through a second mount of its filesystem.
	f.alias = sharedDir(t)
	if err := syscall.Mount(dir, f.alias, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(f.alias, syscall.MNT_DETACH) })

	// Outside processes whose /proc/PID/root leads to the host's mounts:
	// one of root (the test) and one of the jailed user.
	f.pids = map[string]int{"proc-root-pid-root": os.Getpid(), "proc-user-pid-root": sleeper(t, jailedUID)}
	f.sockets = [][2]string{{"stream", f.engine}, {"dgram", f.dgram}}
	f.names = []string{"exact", "double-slash", "dot", "dotdot", "symlink", "proc-self-root", "relative", "proc-self-fd", "bind-alias", "proc-user-pid-root"}
	if real, _ := filepath.EvalSymlinks("/var/run"); real == "/run" {
		f.names = append(f.names, "var-run")
	}
	return f
}

// sleeper starts a process of uid that lives until the test ends.
func sleeper(t *testing.T, uid uint32) int {
	t.Helper()
	v := exec.Command("sleep", "120")
	v.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Process.Kill(); v.Wait() })
	return v.Process.Pid
}

// control runs the client outside the jail, as the same user: every
// spelling gets there but the one through a root process's /proc/PID/root.
func (f *spellings) control(t *testing.T) {
	t.Helper()
	ctl := exec.Command(f.py, "-c", spellingClient, spellingCfg{Prefix: "outside", Sockets: f.sockets, PIDs: f.pids, AliasDir: f.alias}.arg(t))
	ctl.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: jailedUID, Gid: jailedUID}}
	ctl.Dir = "/"
	out, err := ctl.CombinedOutput()
	if err != nil {
		t.Fatalf("control client: %v\n%s", err, out)
	}
	var want []string
	for _, s := range f.sockets {
		for _, n := range f.names {
			want = append(want, filepath.Base(s[1])+" outside:"+n)
		}
	}
	got := settle(f.rec, len(want))
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("control: %q did not arrive outside the jail (got %q)\nclient said:\n%s", w, got, out)
		}
	}
	if t.Failed() {
		t.FailNow() // the spellings prove nothing here
	}
}

// spellingRun is one jailed run of the client.
type spellingRun struct {
	prefix string
	env    []string
	args   []string
	unmask bool
}

// inJail runs the client in a jail that denies the engine's sockets and
// checks what arrived after the first before recordings: nothing at the
// denied sockets, every spelling at the unlisted one. It returns how many
// recordings there are now.
func (f *spellings) inJail(t *testing.T, run spellingRun, before int) int {
	t.Helper()
	userPIDs := f.pids
	if run.prefix == "jail-sudo-user" {
		// The same-uid outside process of this user.
		userPIDs = map[string]int{"proc-root-pid-root": os.Getpid(), "proc-user-pid-root": sleeper(t, 64123)}
	}
	args := append(slices.Clone(run.args), "--deny-unix", f.engine, "--deny-unix", f.dgram, "--",
		f.py, "-c", spellingClient, spellingCfg{Prefix: run.prefix, Sockets: append(slices.Clone(f.sockets), [2]string{"stream", f.app}), PIDs: userPIDs, AliasDir: f.alias, Unmask: run.unmask}.arg(t))
	r := jail(t, runOpts{env: run.env}, args...)
	if r.code != 0 {
		t.Fatalf("%s: %s", run.prefix, r)
	}
	if run.unmask {
		t.Logf("%s: the client's own account:\n%s", run.prefix, r.stdout)
	}
	// /proc/PID/root of a same-uid process outside the jail resolves in
	// that process's mounts: only ptrace access rules stop it, and that
	// is the process isolation layer's to hold, not the masks'.
	userRootVisible := strings.Contains(r.stdout, fmt.Sprintf("pid-root %d visible", userPIDs["proc-user-pid-root"]))
	// The listed sockets: nothing. app.sock, not listed: every spelling
	// but through another process's /proc/PID/root.
	var appWant []string
	for _, n := range f.names {
		if n != "proc-user-pid-root" || userRootVisible {
			appWant = append(appWant, "app.sock "+run.prefix+":"+n)
		}
	}
	got := settle(f.rec, before+len(appWant))[before:]
	for _, w := range appWant {
		if !slices.Contains(got, w) {
			t.Errorf("%s: %q did not arrive at the unlisted socket\njail said:\n%s", run.prefix, w, r)
		}
	}
	for _, h := range got {
		if strings.HasPrefix(h, "app.sock ") {
			continue
		}
		if userRootVisible && strings.HasSuffix(h, ":proc-user-pid-root") {
			t.Logf("%s: %q arrived through /proc/PID/root of an outside process of the same user: this build has no ptrace isolation, which covers that spelling", run.prefix, h)
			continue
		}
		t.Errorf("%s: a denied socket received %q from the jail\njail said:\n%s", run.prefix, h, r)
	}
	return before + len(got)
}

// jailOwnSocket checks the jail's own unix sockets: a jailed server on a
// path in /tmp and another jailed program connecting to it. The server
// records what it got in a file outside.
func jailOwnSocket(t *testing.T, py string) {
	t.Helper()
	shared := sharedDir(t)
	record := filepath.Join(shared, "own.txt")
	script := fmt.Sprintf(`d=$(mktemp -d)
%[1]s -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[1] + ".ready", "w").close()
c, _ = s.accept(); open(sys.argv[2], "w").write(c.recv(64).decode())' "$d/own.sock" %[2]s &
for i in $(seq 100); do [ -e "$d/own.sock.ready" ] && break; sleep 0.05; done
%[1]s -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"own-socket-reached")' "$d/own.sock"
wait; rm -rf "$d"`, py, record)
	r := jail(t, runOpts{}, "--user", "nobody", "--", "sh", "-c", script)
	if got := readFile(record); got != "own-socket-reached" {
		t.Errorf("the jail's own unix socket: the jailed server got %q, want %q\n%s", got, "own-socket-reached", r)
	}
}

// A denied unix socket (a root listener, as a container engine's) must not
// be reached by any spelling of its path, stream or datagram, as nobody or
// as the invoking user; the same spellings reach it outside the jail. A
// socket that is not on the list, and the jail's own sockets, still work.
func TestPrivilegedDeniedUnixSocketIsUnreachableByAnySpelling(t *testing.T) {
	testutil.RequireRoot(t)
	f := newSpellings(t)
	f.control(t)

	// In the jail: as nobody, and as the invoking user (a sudo user without
	// a passwd entry, another uid).
	before := len(f.rec.all())
	for _, run := range []spellingRun{
		{"jail-nobody", nil, []string{"--user", "nobody"}, false},
		{"jail-sudo-user", []string{"SUDO_UID=64123", "SUDO_GID=64123", "SUDO_USER=ebpfjail-test"}, nil, false},
		// In a user namespace of its own the masks are locked to their parents.
		{"jail-userns", nil, []string{"--user", "nobody"}, true},
	} {
		before = f.inJail(t, run, before)
	}
	jailOwnSocket(t, f.py)
	noJailsLeft(t)
}
