package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// urlsFor are the three ways to name the test host: IPv4, IPv6 and an
// IPv4-mapped IPv6 address.
func urlsFor(h *testutil.Host, port int) map[string]string {
	return map[string]string{
		"ipv4":      fmt.Sprintf("http://%s:%d/", h.IPv4, port),
		"ipv6":      fmt.Sprintf("http://[%s]:%d/", h.IPv6, port),
		"v4-mapped": fmt.Sprintf("http://[::ffff:%s]:%d/", h.IPv4, port),
	}
}

// wantConnectionEvent checks that the listener recorded a request to the
// original destination dst made by comm.
func wantConnectionEvent(t *testing.T, events []event.Event, dst, comm string) {
	t.Helper()
	for _, e := range events {
		if e.Type == event.TypeRequest && e.Verdict == event.Allow && e.Dst == dst && e.Comm == comm && e.PID > 0 {
			return
		}
	}
	t.Errorf("no allowed request event with dst=%s comm=%s in %+v", dst, comm, events)
}

func TestPrivilegedClientsReachTestHostThroughTheListener(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 8080)
	dir := sharedDir(t)
	goclient := filepath.Join(dir, "goclient")
	if out, err := exec.Command("go", "build", "-o", goclient, "./testdata/goclient").CombinedOutput(); err != nil {
		t.Fatalf("build goclient: %v\n%s", err, out)
	}
	dsts := map[string]string{
		"ipv4":      fmt.Sprintf("%s:8080", h.IPv4),
		"ipv6":      fmt.Sprintf("[%s]:8080", h.IPv6),
		"v4-mapped": fmt.Sprintf("%s:8080", h.IPv4),
	}
	for family, url := range urlsFor(h, 8080) {
		t.Run("curl-"+family, func(t *testing.T) {
			requireTool(t, "curl")
			ev := eventsPath(t)
			r := jail(t, runOpts{}, "-v", "--log-json", ev, "--user", "nobody", "--js", "true", "--", "curl", "-sS", "--noproxy", "*", "-D", "-", url)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			contains(t, "curl output", r.stdout, "hello from testhost")
			// The test host sees ebpfjail's dial from the root namespace, not the jail.
			contains(t, "seen remote", r.stdout, "X-Remote-Addr: ")
			wantConnectionEvent(t, readEvents(t, ev), dsts[family], "curl")
		})
		t.Run("go-"+family, func(t *testing.T) {
			ev := eventsPath(t)
			r := jail(t, runOpts{}, "-v", "--log-json", ev, "--user", "nobody", "--js", "true", "--", goclient, url)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			contains(t, "go client", r.stdout, "status 200")
			wantConnectionEvent(t, readEvents(t, ev), dsts[family], "goclient")
		})
		t.Run("python-"+family, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
			prog := `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.create_connection((host, port)) if fam == socket.AF_INET else socket.socket(fam)
if fam == socket.AF_INET6: s.connect((host, port))
print("peer", s.getpeername()[0], s.getpeername()[1])
hosthdr = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
s.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % hosthdr).encode())
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
print(data.decode().splitlines()[0])
`
			ev := eventsPath(t)
			r := jail(t, runOpts{}, "-v", "--log-json", ev, "--user", "nobody", "--js", "true", "--", python(t), "-c", prog, host, port)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			contains(t, "python getpeername", r.stdout, "peer "+host+" "+port)
			contains(t, "python response", r.stdout, "HTTP/1.0 200 OK")
			wantConnectionEvent(t, readEvents(t, ev), dsts[family], "python3")
		})
	}
	noJailsLeft(t)
}

func TestPrivilegedGrandchildAndDaemonAreSteeredAndKilledAtExit(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 8080)
	dir := sharedDir(t)
	url := fmt.Sprintf("http://%s:8080/", h.IPv4)
	marker := fmt.Sprintf("ebpfjail-daemon-%d", time.Now().UnixNano())
	// The daemon double-forks out of the shell (setsid, parent exits), fetches
	// the URL while the command still runs, then lingers: ebpfjail must still
	// steer it, and kill it when the command exits.
	script := fmt.Sprintf(`
sh -c 'curl -s --noproxy "*" %[1]s > %[2]s/grandchild'
cp /bin/sleep %[2]s/%[3]s
( setsid sh -c 'curl -s --noproxy "*" %[1]s > %[2]s/daemon; exec %[2]s/%[3]s 300' & )
for i in $(seq 100); do [ -s %[2]s/daemon ] && break; sleep 0.1; done
`, url, dir, marker)
	ev := eventsPath(t)
	r := jail(t, runOpts{}, "-v", "--log-json", ev, "--user", "nobody", "--js", "true", "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, f := range []string{"grandchild", "daemon"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		contains(t, f, string(b), "hello from testhost")
	}
	n := 0
	for _, e := range readEvents(t, ev) {
		if e.Type == event.TypeRequest && e.Comm == "curl" {
			n++
		}
	}
	if n < 2 {
		t.Errorf("requests recorded: got %d, want 2\n%s", n, r.stderr)
	}
	contains(t, "teardown log", r.stderr, "killing processes left in the jail")
	if out, _ := exec.Command("pgrep", "-f", marker).Output(); len(out) > 0 {
		t.Errorf("daemon survived ebpfjail: pids %s", out)
		killPIDs(string(out))
	}
	noJailsLeft(t)
}

func TestPrivilegedTwoJailsRunSideBySide(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	h := testutil.NewHost(t)
	h.ServeHTTP(t, 8080)
	url := fmt.Sprintf("http://%s:8080/", h.IPv4)
	// Each jail fetches, then waits long enough for the other to be running.
	script := fmt.Sprintf(`sleep 0.5; curl -s --noproxy "*" %s; sleep 0.5; grep ^0:: /proc/self/cgroup`, url)
	results := make(chan result, 2)
	for range 2 {
		go func() { results <- jail(t, runOpts{}, "--user", "nobody", "--js", "true", "--", "sh", "-c", script) }()
	}
	var cgroups []string
	for range 2 {
		r := <-results
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		contains(t, "fetch", r.stdout, "hello from testhost")
		cgroups = append(cgroups, r.stdout[strings.LastIndex(r.stdout, "0::"):])
	}
	if cgroups[0] == cgroups[1] {
		t.Errorf("both jails ran in %s, want one cgroup each", cgroups[0])
	}
	noJailsLeft(t)
}
