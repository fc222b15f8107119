package tests

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// auditeeRun is one run of testdata/auditee/auditee.py under --audit: its
// output, events and the pids it printed.
type auditeeRun struct {
	r                   result
	events              []event.Event
	parent, grandparent uint32 // the script and its parent
	child               uint32 // its forked child
}

func runAuditee(t *testing.T, s *site) auditeeRun {
	t.Helper()
	prog, err := os.ReadFile("testdata/auditee/auditee.py")
	if err != nil {
		t.Fatal(err)
	}
	jsonLog := filepath.Join(t.TempDir(), "events.jsonl")
	rule := "r.host === 'allowed.test' || {deny_message: 'not on the list: ' + r.host}"
	args := []string{"--audit", "--log-json", jsonLog, "--user", "nobody", "--js", rule,
		"--resolve", "allowed.test:" + s.h.IPv4.String(), "--resolve", "denied.test:" + s.h.IPv4.String(),
		"--", python(t), "-c", string(prog), s.h.IPv4.String()}
	run := auditeeRun{r: jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, args...)}
	if run.r.code != 0 {
		t.Fatalf("%s", run.r)
	}
	run.events = readEvents(t, jsonLog)
	pids := func(who string) (uint32, uint32) {
		m := regexp.MustCompile(`(?m)^` + who + ` (\d+) (\d+)$`).FindStringSubmatch(run.r.stdout)
		if m == nil {
			t.Fatalf("no %q line in the output:\n%s", who, run.r)
		}
		a, _ := strconv.ParseUint(m[1], 10, 32)
		b, _ := strconv.ParseUint(m[2], 10, 32)
		return uint32(a), uint32(b)
	}
	run.parent, run.grandparent = pids("parent")
	var childParent uint32
	run.child, childParent = pids("child")
	if childParent != run.parent {
		t.Fatalf("the child's parent is %d, not the script %d", childParent, run.parent)
	}
	return run
}

// find returns the events that match, as lines for a failure message too.
func (a auditeeRun) find(match func(event.Event) bool) []event.Event {
	var out []event.Event
	for _, e := range a.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

func (a auditeeRun) eventLog() string {
	var b strings.Builder
	for _, e := range a.events {
		fmt.Fprintf(&b, "%+v\n", e)
	}
	return b.String()
}

// An unknown program under --audit: every one of its attempts is in
// --log-json under the process that made it (a forked child under its own
// pid, its parent as ppid), what the kernel refused as refused events, a
// DNS query to a server the program chose with that server and the name
// as asked, and the audit table's blocked lines name the refusals.
func TestPrivilegedAuditEventsMissNothing(t *testing.T) {
	s := newSite(t)
	a := runAuditee(t, s)
	for _, want := range []string{"https-allowed 200", "https-denied 200", "udp error 1", "raw error 1", "packet error 97", "dns answered", "child-http 200"} {
		contains(t, "auditee output", a.r.stdout, want)
	}
	ip := s.h.IPv4.String()
	byParent := func(e event.Event) bool { return e.PID == a.parent && e.PPID == a.grandparent && e.Comm == "python3" }
	checks := []struct {
		what  string
		match func(event.Event) bool
	}{
		{"allowed HTTPS request, with the address dialled", func(e event.Event) bool {
			return e.Type == event.TypeRequest && byParent(e) && e.URL == "https://allowed.test/audit" &&
				e.Verdict == event.Allow && e.Upstream == ip+":443"
		}},
		{"HTTPS request the rule would deny, with its message", func(e event.Event) bool {
			return e.Type == event.TypeRequest && byParent(e) && e.URL == "https://denied.test/audit" &&
				e.Verdict == event.Allow && strings.HasPrefix(e.Reason, "audit: the rule would deny") &&
				e.DenyMessage == "not on the list: denied.test" && e.Upstream == ip+":443"
		}},
		{"refused UDP send", func(e event.Event) bool {
			return e.Type == event.TypeRefused && byParent(e) && e.Op == "sendmsg" && e.Family == "inet" &&
				e.SockType == "dgram" && e.Proto == "udp" && e.Dst == ip+":9999" && e.Verdict == event.Deny
		}},
		{"refused raw ICMP socket", func(e event.Event) bool {
			return e.Type == event.TypeRefused && byParent(e) && e.Op == "socket" && e.Family == "inet" &&
				e.SockType == "raw" && e.Proto == "icmp"
		}},
		{"packet socket the seccomp filter refused", func(e event.Event) bool {
			return e.Type == event.TypeRefused && byParent(e) && e.Op == "socket" && e.Family == "packet" &&
				e.SockType == "raw" && e.Reason == "socket family not allowed in the jail"
		}},
		{"DNS query to the program's own server, name as asked", func(e event.Event) bool {
			return e.Type == event.TypeDNS && byParent(e) && e.Name == "c2VjcmV0.Exfil.test" && e.Server == ip+":53"
		}},
		{"lookup through the system resolver", func(e event.Event) bool {
			return e.Type == event.TypeDNS && byParent(e) && e.Name == "allowed.test" && e.Server != ""
		}},
		{"the forked child's request under its own pid", func(e event.Event) bool {
			return e.Type == event.TypeRequest && e.PID == a.child && e.PPID == a.parent &&
				e.URL == "http://allowed.test/child" && e.Verdict == event.Allow
		}},
	}
	for _, c := range checks {
		if len(a.find(c.match)) == 0 {
			t.Errorf("no event for the %s; parent %d (of %d), child %d; events:\n%s", c.what, a.parent, a.grandparent, a.child, a.eventLog())
		}
	}
	// The table (stderr) and the summary event name what the kernel refused.
	for _, want := range []string{"udp sendmsg " + ip + ":9999", "socket inet raw icmp", "dns: ", "c2VjcmV0.Exfil.test"} {
		contains(t, "audit table", a.r.stderr, want)
	}
}

// A rule's deny message is in the request event and on the denied line.
func TestPrivilegedDenyMessageIsLoggedAndPrinted(t *testing.T) {
	s := newSite(t)
	jsonLog := filepath.Join(t.TempDir(), "events.jsonl")
	rule := "r.host === 'allowed.test' || {deny_message: 'not on the list: ' + r.host}"
	r := s.run(t, rule, []string{"--log-json", jsonLog}, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\n", "https://denied.test/x")
	contains(t, "curl", r.stdout, "403")
	contains(t, "denied line", r.stderr, "denied GET https://denied.test/x (curl pid ")
	contains(t, "denied line", r.stderr, "; message: not on the list: denied.test")
	var got []string
	for _, e := range readEvents(t, jsonLog) {
		if e.Type == event.TypeRequest {
			got = append(got, e.Verdict+" "+e.URL+" "+e.DenyMessage)
		}
	}
	if want := "deny https://denied.test/x not on the list: denied.test"; len(got) != 1 || got[0] != want {
		t.Errorf("request events: got %q, want [%q]", got, want)
	}
}

// `ebpfjail watch` shows what the kernel refuses in a jail, one line each,
// as it happens.
func TestPrivilegedWatchShowsWhatTheKernelRefuses(t *testing.T) {
	h := testutil.NewHost(t)
	cmd := ebpfjail(t, "watch")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond) // attached to whatever runs now
	port := 20000 + os.Getpid()%10000  // a port only this test sends to
	dst := netip.AddrPortFrom(h.IPv4, uint16(port)).String()
	prog := `import socket, sys, time
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print("udp", e.errno)
time.sleep(0.5)`
	r := jail(t, runOpts{}, "--user", "nobody", "--", python(t), "-c", prog, h.IPv4.String(), strconv.Itoa(port))
	contains(t, "python", r.stdout, "udp 1")
	want := "refused udp sendmsg " + dst + " (python3 pid "
	waitFor(t, "watch to show "+want, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(lines, "\n"), want)
	})
}
