package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/control"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// watcher is a running `ebpfjail watch --json`: its events with when
// each arrived, and its notes.
type watcher struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []arrival
	notes  []string
}

type arrival struct {
	e  event.Event
	at time.Time
}

func startWatcher(t *testing.T, args ...string) *watcher {
	t.Helper()
	w := &watcher{cmd: ebpfjail(t, append([]string{"watch", "--json"}, args...)...)}
	stdout, _ := w.cmd.StdoutPipe()
	stderr, _ := w.cmd.StderrPipe()
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("watch --json wrote a line that is no event: %q", sc.Text())
				continue
			}
			w.mu.Lock()
			w.events = append(w.events, arrival{e, time.Now()})
			w.mu.Unlock()
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			w.mu.Lock()
			w.notes = append(w.notes, sc.Text())
			w.mu.Unlock()
		}
	}()
	return w
}

// waitNote waits until a note contains want.
func (w *watcher) waitNote(t *testing.T, want string) {
	t.Helper()
	waitFor(t, "watch to say "+want, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return strings.Contains(strings.Join(w.notes, "\n"), want)
	})
}

// mine returns the events that name marker (a host only this test asks
// for): other jails on the machine are watched too.
func (w *watcher) mine(marker string) []arrival {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []arrival
	for _, a := range w.events {
		if strings.Contains(a.e.URL+a.e.Name+strings.Join(a.e.Argv, " "), marker) {
			out = append(out, a)
		}
	}
	return out
}

// wantLive checks that a request, a DNS lookup and an exec naming marker
// reached the watcher, each within a second of its time.
func (w *watcher) wantLive(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	seen := map[string]bool{}
	for time.Now().Before(deadline) && len(seen) < 3 {
		for _, a := range w.mine(marker) {
			if lag := a.at.Sub(a.e.Time); lag > time.Second {
				t.Errorf("%s event arrived %v after its time", a.e.Type, lag)
			}
			seen[a.e.Type] = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, typ := range []string{event.TypeRequest, event.TypeDNS, event.TypeExec} {
		if !seen[typ] {
			t.Errorf("watch did not show the %s event of %s; notes: %q", typ, marker, w.notes)
		}
	}
}

func TestPrivilegedWatchFollowsJailsAsTheyComeAndGo(t *testing.T) {
	testutil.RequireRoot(t)
	w := startWatcher(t)
	time.Sleep(300 * time.Millisecond) // attached to whatever runs now
	for _, marker := range []string{"watch-one.test", "watch-two.test"} {
		r := jail(t, runOpts{}, "--user", "nobody", "--", "sh", "-c", "curl -s -m 5 http://"+marker+"/; sleep 0.5")
		contains(t, "curl", r.stdout, "blocked")
		w.wantLive(t, marker)
		w.waitNote(t, "ended: exit status 0")
		if w.cmd.ProcessState != nil {
			t.Fatalf("watch exited when a jail ended: %v", w.notes)
		}
	}
	noJailsLeft(t)
}

// psRow is the row of `ebpfjail ps` that names marker.
func psRow(t *testing.T, marker string) []string {
	out, err := ebpfjail(t, "ps").CombinedOutput()
	if err != nil {
		t.Fatalf("ps: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, marker) {
			return strings.Fields(line)
		}
	}
	return nil
}

func TestPrivilegedPsListsARunningJailWithItsCounts(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	done := filepath.Join(dir, "done")
	cmd := ebpfjail(t, "--user", "nobody", "--", "sh", "-c",
		"curl -s -m 5 http://ps-marker.test/ >/dev/null; curl -s -m 5 http://ps-marker.test/x >/dev/null; touch "+done+"; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); noJailsLeft(t) })
	waitFor(t, "the jailed curls", func() bool { _, err := os.Stat(done); return err == nil })
	row := psRow(t, "ps-marker.test")
	// ID PID USER STARTED(2 words + "ago)") ALLOWED DENIED REFUSED COMMAND...
	if len(row) < 9 || row[2] != "nobody" || row[6] != "0" || row[7] != "2" || row[8] != "0" {
		t.Errorf("ps row %q, want user nobody, 0 allowed, 2 denied, 0 refused", row)
	}
}

// reachControl is run in the jail: it waits for the path of its jail's
// control socket, tries it by several spellings and lists the state
// directory, and writes one line per try.
const reachControl = `
import socket, os, sys, time
d = sys.argv[1]
while not os.path.exists(d + '/path'):
    time.sleep(0.05)
p = open(d + '/path').read().strip()
tries = [('path', p), ('slashes', '/' + p), ('dot', os.path.dirname(p) + '/./' + os.path.basename(p)),
         ('dotdot', os.path.dirname(p) + '/../jails/' + os.path.basename(p)),
         ('procroot', '/proc/self/root' + p), ('symlink', d + '/link')]
out = []
for name, a in tries:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(a)
        s.sendall(b'{"v":1,"op":"status"}\n')
        out.append(name + ' CONNECTED ' + repr(s.recv(200)))
    except OSError as e:
        out.append(name + ' refused ' + str(e.strerror))
try:
    out.append('list LISTED ' + ' '.join(os.listdir(os.path.dirname(p))))
except OSError as e:
    out.append('list refused ' + str(e.strerror))
open(d + '/result.tmp', 'w').write('\n'.join(out) + '\n')
os.rename(d + '/result.tmp', d + '/result')
time.sleep(30)
`

func TestPrivilegedJailCannotReachItsControlSocket(t *testing.T) {
	testutil.RequireRoot(t)
	py := python(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"sudo user", nil, []string{"SUDO_UID=1", "SUDO_GID=1", "SUDO_USER=daemon"}},
		{"user nobody", []string{"--user", "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sharedDir(t)
			script := writeShared(t, dir, "reach.py", reachControl, 0o644)
			cmd := ebpfjail(t, append(tc.args, "--", py, script, dir)...)
			cmd.Env = append(cmd.Env, tc.env...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); noJailsLeft(t) }()
			sock := controlSocket(t, cmd.Process.Pid)
			os.Symlink(sock, filepath.Join(dir, "link"))
			writeShared(t, dir, "path.tmp", sock, 0o644)
			os.Rename(filepath.Join(dir, "path.tmp"), filepath.Join(dir, "path"))
			var result string
			waitFor(t, "the jailed attempts", func() bool { result = readFile(filepath.Join(dir, "result")); return result != "" })
			t.Logf("from inside the jail:\n%s", result)
			for _, line := range strings.Split(strings.TrimSpace(result), "\n") {
				if !strings.Contains(line, " refused ") {
					t.Errorf("from inside the jail: %s", line)
				}
			}
			if n := strings.Count(result, "\n"); n != 7 {
				t.Errorf("%d attempts reported, want 7:\n%s", n, result)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := control.AskStatus(ctx, sock)
			if err != nil {
				t.Fatalf("root outside the jail: %v", err)
			}
			if st.Peers.Refused != 0 {
				t.Errorf("the server refused %d peer(s): something of the jail reached the socket", st.Peers.Refused)
			}
		})
	}
}

func TestPrivilegedWatchWithoutAJailOrRootFailsWithAHint(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{}, "watch", "no-such-jail")
	if r.code != 125 || !strings.Contains(r.stderr, "ebpfjail: error: no running jail's id starts with no-such-jail") ||
		!strings.Contains(r.stderr, "ebpfjail: hint: 'sudo ebpfjail ps'") {
		t.Errorf("watch of no jail:\n%s", r)
	}
	for _, word := range []string{"watch", "ps"} {
		r = jail(t, runOpts{setup: func(c *exec.Cmd) {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}}, word)
		if r.code != 125 || !strings.Contains(r.stderr, "ebpfjail: error: "+word+" needs root\nebpfjail: hint: run it with sudo") {
			t.Errorf("%s without root:\n%s", word, r)
		}
	}
}

// controlSocket waits for the control socket of the jail whose supervisor
// is pid and returns its path.
func controlSocket(t *testing.T, pid int) string {
	t.Helper()
	var sock string
	waitFor(t, "the jail's control socket", func() bool {
		m, _ := filepath.Glob(filepath.Join(stateDir, strconv.Itoa(pid)+"-*.sock"))
		if len(m) == 1 {
			sock = m[0]
		}
		return sock != ""
	})
	return sock
}
