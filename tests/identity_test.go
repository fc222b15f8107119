package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// raceClient connects, sends one request, then either exits at once or
// execs /usr/bin/curl, so that the process that connected is gone, or runs
// another program, by the time ebpfjail accepts. The socket is made before
// a fork: the child shares it and keeps the connection open (reading the
// answer), so the request is forwarded when the rule allows it.
const raceClient = `
import os, socket, sys, time
host, port, tag, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if os.fork() == 0:
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            s.getpeername()
            break
        except OSError:
            time.sleep(0.005)
    s.settimeout(3)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    os._exit(0)
s.connect((host, port))
s.sendall(("GET /%s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (tag, host, port)).encode())
if mode == "exec":
    os.execv("/usr/bin/curl", ["curl", "--version"])
os._exit(0)
`

// raceRuns is how many times each race is run per jail.
const raceRuns = 20

// runRaces jails a shell that runs raceClient raceRuns times as the
// program at exe, under rule, and returns how many of its requests reached
// the test host.
func runRaces(t *testing.T, h *testutil.Host, exe, rule, mode, tag string) int {
	t.Helper()
	script := fmt.Sprintf(`for i in $(seq %d); do %q -c "$0" %s 8080 %s-$i %s >/dev/null; done; sleep 2`,
		raceRuns, exe, h.IPv4, tag, mode)
	r := jail(t, runOpts{}, "-v", "--user", "nobody", "--js", rule, "--", "sh", "-c", script, raceClient)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	n := 0
	for _, req := range h.Requests() {
		if strings.Contains(req, " /"+tag+"-") {
			n++
		}
	}
	return n
}

// A rule on r.proc.exe must see the program that called connect(), even
// when it exits, or execs another program, before ebpfjail accepts.
func TestPrivilegedProcessIdentityIsTheOneAtConnect(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	if _, err := filepath.EvalSymlinks("/usr/bin/curl"); err != nil {
		t.Skip("no /usr/bin/curl")
	}
	py := python(t)
	// A program of its own (a copy of python3), so its exe names it alone.
	dir := sharedDir(t)
	blocked := filepath.Join(dir, "blocked-python")
	if b, err := os.ReadFile(py); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(blocked, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mode, rule string
	}{
		// A deny list: everything but the blocked program.
		{"exit", fmt.Sprintf("r.proc.exe !== '%s'", blocked)},
		// An allow list: curl only.
		{"exec", "r.proc.exe === '/usr/bin/curl'"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			h := testutil.NewHost(t)
			h.ServeHTTP(t, 8080)
			// Control: allowed, every request of the construction arrives.
			if got := runRaces(t, h, blocked, "true", c.mode, "control-"+c.mode); got != raceRuns {
				t.Fatalf("control (rule true): got %d of %d requests at the test host, want all: the race proves nothing", got, raceRuns)
			}
			if got := runRaces(t, h, blocked, c.rule, c.mode, c.mode); got != 0 {
				t.Errorf("rule %s: got %d of %d requests from %s at the test host, want 0 (r.proc.exe must be the program at connect())", c.rule, got, raceRuns, blocked)
			}
		})
	}
}
