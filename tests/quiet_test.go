package tests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// quietOrigin is an origin on a test host that counts the connections
// that reach it: a denied request must not.
func quietOrigin(t *testing.T) (*testutil.Host, *atomic.Int64) {
	h := testutil.NewHost(t)
	var n atomic.Int64
	ln := h.Listen(t, "tcp", "0.0.0.0:80")
	t.Cleanup(func() { ln.Close() })
	testutil.Serve(ln, func(c net.Conn) {
		n.Add(1)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	})
	return h, &n
}

// pagerFile is a file nobody can read, for less to show.
func pagerFile(t *testing.T) string {
	dir, err := os.MkdirTemp("", "quiet-pager-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "pager line %d\n", i)
	}
	name := filepath.Join(dir, "page.txt")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// deniedRequests counts the denied request events in a JSON log.
func deniedRequests(path string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"type":"request"`) && strings.Contains(l, `"verdict":"deny"`) {
			n++
		}
	}
	return n
}

// jailedShell starts an interactive bash jailed by ebpfjail with flags in
// a tmux pane wide enough for the summary line not to wrap, and waits for
// its prompt. When ebpfjail exits, the pane shows EBPFJAIL-EXIT=status.
func jailedShell(t *testing.T, name string, flags ...string) tmux {
	t.Helper()
	testutil.RequireRoot(t)
	requireTool(t, "tmux")
	requireTool(t, "bash")
	requireTool(t, "curl")
	m := newTmux(t, name)
	cmd := fmt.Sprintf("%s %s -- bash --norc --noprofile -i; echo EBPFJAIL-EXIT=$?; sleep 60", bin, strings.Join(flags, " "))
	m.run("new-session", "-d", "-s", "jail", "-x", "250", "-y", "30", "env", owner(t), "PS1=jailed$ ", "sh", "-c", cmd)
	m.waitScreen("jailed$")
	return m
}

// exitShell exits the jailed shell and returns the screen once ebpfjail
// has exited too.
func exitShell(m tmux) string {
	m.t.Helper()
	m.run("send-keys", "-t", "jail", "exit", "Enter")
	m.waitScreen("EBPFJAIL-EXIT=")
	return m.screen()
}

// A full-screen program in the jail keeps its screen while a background
// job of the same shell makes denied requests; the counts come at exit.
func TestPrivilegedQuietOnASharedTerminalThenOneSummaryLine(t *testing.T) {
	requireTool(t, "less")
	h, arrived := quietOrigin(t)
	page := pagerFile(t)
	events := filepath.Join(t.TempDir(), "events.json")
	m := jailedShell(t, "ebpfjail-quiet", "--user nobody --js false --log-json", events)

	m.run("send-keys", "-t", "jail", fmt.Sprintf("(for i in 1 2 3; do sleep 1; curl -s -o /dev/null http://%s/denied-$i; done) &", h.IPv4), "Enter")
	m.run("send-keys", "-t", "jail", "less "+page, "Enter")
	m.waitScreen("pager line 20")
	deadline := time.Now().Add(30 * time.Second)
	for deniedRequests(events) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the background job's requests were not all denied (%d in the JSON log); screen:\n%s", deniedRequests(events), m.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a line, if ebpfjail wrote one, reaches the pane
	if s := m.screen(); strings.Contains(s, "ebpfjail") || !strings.Contains(s, "pager line 20") {
		t.Errorf("ebpfjail drew on the command's screen while it ran:\n%s", s)
	}

	m.run("send-keys", "-t", "jail", "q")
	s := exitShell(m)
	want := "ebpfjail: 3 requests denied (they are in " + events
	if strings.Count(s, "ebpfjail: ") != 1 || !strings.Contains(s, want) {
		t.Errorf("after the command: want the one line %q, screen:\n%s", want, s)
	}
	if n := arrived.Load(); n != 0 {
		t.Errorf("%d connection(s) of denied requests reached the origin", n)
	}
	noJailsLeft(t)
}

// -v asks for the lines: each request is told on the terminal as it
// happens.
func TestPrivilegedVerboseStillTellsEachRequestOnTheTerminal(t *testing.T) {
	h, _ := quietOrigin(t)
	m := jailedShell(t, "ebpfjail-quietv", "-v --user nobody --js false")
	m.run("send-keys", "-t", "jail", fmt.Sprintf("curl -s -o /dev/null http://%s/told-$((1+1))", h.IPv4), "Enter")
	m.waitScreen(fmt.Sprintf("ebpfjail: denied GET http://%s/told-2", h.IPv4))
	if s := exitShell(m); strings.Contains(s, "requests denied") || strings.Contains(s, "request denied") {
		t.Errorf("-v printed the summary of counts too:\n%s", s)
	}
	noJailsLeft(t)
}

// A warning that comes while the command runs (here: the JSON log cannot
// be written, /dev/full) waits until the command has exited, then is
// shown before the summary.
func TestPrivilegedWarningsDuringTheRunWaitForTheCommandToExit(t *testing.T) {
	h, _ := quietOrigin(t)
	m := jailedShell(t, "ebpfjail-quietw", "--user nobody --js false --log-json /dev/full")
	m.run("send-keys", "-t", "jail", fmt.Sprintf("curl -s -o /dev/null -w 'status-%%{http_code}\\n' http://%s/", h.IPv4), "Enter")
	m.waitScreen("status-403")
	time.Sleep(500 * time.Millisecond)
	if s := m.screen(); strings.Contains(s, "ebpfjail") {
		t.Errorf("ebpfjail wrote on the command's screen while it ran:\n%s", s)
	}
	s := exitShell(m)
	warning := strings.Index(s, "ebpfjail: warning: cannot write the JSON log (/dev/full)")
	summary := strings.Index(s, "ebpfjail: 1 request denied")
	if warning < 0 || summary < warning || strings.Index(s, "status-403") > warning {
		t.Errorf("want the held warning after the command, then the summary; screen:\n%s", s)
	}
	noJailsLeft(t)
}
