package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// auditEvents is what `--audit -- sh -c 'curl A; python3 B; nc C 22'`
// and a little more produce: several pids of one executable, two hosts,
// a denied request, DNS names in mixed case, blocked attempts of both
// kinds, a process with no network, and events the audit must ignore.
func auditEvents() []event.Event {
	curl := func(pid uint32, verdict, method, host string, port int, up, down int64) event.Event {
		return event.Event{Type: event.TypeRequest, Verdict: verdict, Reason: "rule", PID: pid, Comm: "curl",
			Exe: "/usr/bin/curl", Method: method, URL: "https://" + host + "/", Scheme: "https", Host: host, Port: port,
			BytesUp: up, BytesDown: down}
	}
	return []event.Event{
		{Type: event.TypeExec, PID: 1, Comm: "sh", Exe: "/bin/sh", Argv: []string{"sh", "-c", "..."}},
		{Type: event.TypeExec, PID: 1234, PPID: 1, Comm: "curl", Exe: "/usr/bin/curl"},
		// DNS events have no exe; the audit folds them into curl's entry.
		{Type: event.TypeDNS, Verdict: event.Allow, PID: 1234, Comm: "curl", Name: "Allowed.TEST.", QType: "A", Server: "192.0.2.53:53"},
		{Type: event.TypeDNS, Verdict: event.Allow, PID: 1234, Comm: "curl", Name: "allowed.test", QType: "AAAA"},
		// A curl that never connected: folded by its comm alone.
		{Type: event.TypeDNS, Verdict: event.Deny, PID: 1250, Comm: "curl", Name: "nope.test", QType: "A", Rcode: "NXDOMAIN"},
		// exec names the symlink; /proc names its target.
		{Type: event.TypeExec, PID: 2000, PPID: 1, Comm: "python3", Exe: "/usr/bin/python3"},
		curl(1234, event.Allow, "GET", "allowed.test", 443, 90, 600),
		curl(1234, event.Allow, "GET", "allowed.test", 443, 90, 629),
		curl(1240, event.Deny, "POST", "denied.test", 443, 0, 0),
		curl(1240, event.Allow, "GET", "allowed.test", 8443, 0, 5<<20),
		{Type: event.TypeRequest, Verdict: event.Allow, PID: 2000, Comm: "python3", Exe: "/usr/bin/python3.12",
			Method: "GET", URL: "http://[2001:db8::5]:8080/x", Scheme: "http", Host: "2001:db8::5", Port: 8080, BytesDown: 10},
		// No host field: the audit falls back to the URL.
		{Type: event.TypeRequest, Verdict: event.Deny, Reason: "Loop detected", PID: 2000, Comm: "python3",
			Exe: "/usr/bin/python3.12", Method: "GET", URL: "http://127.0.0.1/"},
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", PID: 99, Comm: "nc", Exe: "/usr/bin/nc.openbsd",
			URL: "tcp://ssh.test:22", Scheme: "tcp", Host: "ssh.test", Port: 22},
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", PID: 99, Comm: "nc", Exe: "/usr/bin/nc.openbsd",
			URL: "tcp://ssh.test:22", Scheme: "tcp", Host: "ssh.test", Port: 22},
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "TLS handshake failed: remote error: tls: bad certificate",
			PID: 2000, Comm: "python3", Exe: "/usr/bin/python3.12", URL: "https://pinned.test:443", Scheme: "https", Host: "pinned.test", Port: 443},
		// What the kernel refused, with the program it ran.
		{Type: event.TypeRefused, Verdict: event.Deny, Reason: "UDP is refused except DNS (port 53)", PID: 2000, Comm: "python3",
			Exe: "/usr/bin/python3.12", Op: "sendmsg", Family: "inet", SockType: "dgram", Proto: "udp", Dst: "192.0.2.9:9999", Count: 3},
		{Type: event.TypeRefused, Verdict: event.Deny, Reason: "only TCP and UDP sockets", PID: 2000, Comm: "python3",
			Exe: "/usr/bin/python3.12", Op: "socket", Family: "inet", SockType: "raw", Proto: "icmp"},
		// A forked child of curl that did not exec, whose client does not trust the CA.
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "tls handshake: client does not trust the CA: bad certificate",
			PID: 1235, PPID: 1234, Comm: "curl", Exe: "/usr/bin/curl", URL: "https://pinned.test:443", Scheme: "https", Host: "pinned.test", Port: 443},
		// A DNS query whose process was not found.
		{Type: event.TypeDNS, Verdict: event.Allow, Name: "orphan.test", QType: "A"},
		// Ignored: a summary, an allowed connection, an unknown type.
		{Type: event.TypeSummary, Summary: &event.Summary{}},
		{Type: event.TypeConnection, Verdict: event.Allow, PID: 5, Comm: "x"},
		{Type: "future", PID: 6, Comm: "y"},
	}
}

func wantSummary() event.Summary {
	return event.Summary{ExitStatus: 7, DurationMS: 2345.679, Processes: []event.Process{
		{Comm: "", PIDs: []uint32{}, DNSNames: []string{"orphan.test"}},
		{Comm: "curl", Exe: "/usr/bin/curl", PIDs: []uint32{1234, 1235, 1240, 1250}, Hosts: []event.Host{
			{Host: "allowed.test", Port: 443, Methods: map[string]int{"GET": 2}, Allowed: 2, BytesUp: 180, BytesDown: 1229},
			{Host: "allowed.test", Port: 8443, Methods: map[string]int{"GET": 1}, Allowed: 1, BytesDown: 5 << 20},
			{Host: "denied.test", Port: 443, Methods: map[string]int{"POST": 1}, Denied: 1},
		}, DNSNames: []string{"Allowed.TEST", "allowed.test", "nope.test"}, Blocked: []string{"https://pinned.test:443 (client does not trust the CA)"}},
		{Comm: "nc", Exe: "/usr/bin/nc.openbsd", PIDs: []uint32{99}, Blocked: []string{"tcp://ssh.test:22"}},
		{Comm: "python3", Exe: "/usr/bin/python3.12", PIDs: []uint32{2000}, Hosts: []event.Host{
			{Host: "127.0.0.1", Port: 80, Methods: map[string]int{"GET": 1}, Denied: 1},
			{Host: "2001:db8::5", Port: 8080, Methods: map[string]int{"GET": 1}, Allowed: 1, BytesDown: 10},
		}, Blocked: []string{"https://pinned.test:443 (TLS handshake failed)", "socket inet raw icmp", "udp sendmsg 192.0.2.9:9999"}},
		{Comm: "sh", Exe: "/bin/sh", PIDs: []uint32{1}},
	}, Tree: wantTree()}
}

func wantTree() []event.Node {
	curlHosts := []event.Host{
		{Host: "allowed.test", Port: 443, Methods: map[string]int{"GET": 2}, Allowed: 2, BytesUp: 180, BytesDown: 1229},
	}
	const pinnedHint = "client does not trust the CA: likely pinned or its own bundle; try --no-mitm pinned.test"
	return []event.Node{
		{PID: 0, DNSNames: []string{"orphan.test"}},
		{PID: 1, Comm: "sh", Exe: "/bin/sh", Argv: []string{"sh", "-c", "..."}},
		{PID: 1234, PPID: 1, Depth: 1, Comm: "curl", Exe: "/usr/bin/curl", Hosts: curlHosts, DNSNames: []string{"Allowed.TEST", "allowed.test"},
			DNSServers: []string{"192.0.2.53:53"}},
		{PID: 1235, PPID: 1234, Depth: 2, Comm: "curl", Exe: "/usr/bin/curl", Refused: []event.Refusal{{
			Kind: event.RefusedTLS, What: "https://pinned.test:443", Reason: "tls handshake: client does not trust the CA: bad certificate",
			Hint: pinnedHint, Count: 1,
		}}},
		{PID: 2000, PPID: 1, Depth: 1, Comm: "python3", Exe: "/usr/bin/python3.12", Hosts: []event.Host{
			{Host: "127.0.0.1", Port: 80, Methods: map[string]int{"GET": 1}, Denied: 1},
			{Host: "2001:db8::5", Port: 8080, Methods: map[string]int{"GET": 1}, Allowed: 1, BytesDown: 10},
		}, Refused: []event.Refusal{
			{Kind: event.RefusedKernel, What: "socket inet raw icmp", Reason: "only TCP and UDP sockets", Count: 1},
			{Kind: event.RefusedKernel, What: "udp sendmsg 192.0.2.9:9999", Reason: "UDP is refused except DNS (port 53)", Count: 3},
			{Kind: event.RefusedTLS, What: "https://pinned.test:443", Reason: "TLS handshake failed: remote error: tls: bad certificate",
				Hint: "TLS handshake failed: if the client pins its server's certificate or brings its own CA bundle, try --no-mitm pinned.test", Count: 1},
		}},
		{PID: 99, Comm: "nc", Exe: "/usr/bin/nc.openbsd", Refused: []event.Refusal{
			{Kind: event.RefusedConnection, What: "tcp://ssh.test:22", Reason: "non-HTTP", Count: 2},
		}},
		{PID: 1240, Comm: "curl", Exe: "/usr/bin/curl", Hosts: []event.Host{
			{Host: "allowed.test", Port: 8443, Methods: map[string]int{"GET": 1}, Allowed: 1, BytesDown: 5 << 20},
			{Host: "denied.test", Port: 443, Methods: map[string]int{"POST": 1}, Denied: 1},
		}},
		{PID: 1250, Comm: "curl", DNSNames: []string{"nope.test"}},
	}
}

const auditDuration = 2345678901 * time.Nanosecond

func TestAuditSummary(t *testing.T) {
	a := NewAudit()
	for _, e := range auditEvents() {
		a.Emit(e)
	}
	got := a.Summary(7, auditDuration)
	if want := wantSummary(); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}

	// The summary is a copy: aggregating on does not change it.
	a.Emit(auditEvents()[4])
	if !reflect.DeepEqual(got, wantSummary()) {
		t.Error("a later Emit changed a returned summary")
	}
}

// TestAuditDeterministic: any order of the same events, emitted from many
// goroutines, gives the same summary and the same table.
func TestAuditDeterministic(t *testing.T) {
	ref := NewAudit()
	for _, e := range auditEvents() {
		ref.Emit(e)
	}
	var want bytes.Buffer
	if err := ref.WriteTable(&want, ref.Summary(7, auditDuration)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		events := auditEvents()
		rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		a := NewAudit()
		var wg sync.WaitGroup
		for _, e := range events {
			wg.Go(func() { a.Emit(e) })
		}
		wg.Wait()
		s := a.Summary(7, auditDuration)
		if !reflect.DeepEqual(s, wantSummary()) {
			t.Fatalf("shuffle %d: summary differs", i)
		}
		var got bytes.Buffer
		a.WriteTable(&got, s)
		if got.String() != want.String() {
			t.Fatalf("shuffle %d: table differs:\n%s\nwant\n%s", i, got.String(), want.String())
		}
	}
}

func TestAuditTableGolden(t *testing.T) {
	cases := map[string]event.Summary{
		"audit.golden":       wantSummary(),
		"audit-empty.golden": NewAudit().Summary(0, 0),
		"audit-siblings.golden": {Tree: []event.Node{
			{PID: 1, Comm: "bash", Exe: "/usr/bin/bash", Argv: []string{"bash", "build.sh"}},
			{PID: 2, PPID: 1, Depth: 1, Comm: "make"},
			{PID: 3, PPID: 2, Depth: 2, Comm: "cc", Refused: []event.Refusal{{Kind: event.RefusedConnection, What: "tcp://a.test:25", Reason: "non-HTTP", Count: 3}}},
			{PID: 4, PPID: 2, Depth: 2, Comm: "ld"},
			{PID: 5, PPID: 1, Depth: 1, Comm: "curl", Hosts: []event.Host{{Host: "b.test", Port: 443, Methods: map[string]int{"GET": 1}, Allowed: 1}}},
			{PID: 6, PPID: 5, Depth: 2, Comm: "curl", DNSNames: []string{"C.Test"}},
		}},
		"audit-hostile.golden": {Tree: []event.Node{{
			PID: 4, Comm: "x\x1b[31m", Exe: "/tmp/\x1b]0;t\x07", Argv: []string{"x", "\x1b[2J"},
			DNSNames: []string{"a\x1b.test"},
			Hosts:    []event.Host{{Host: "h\x1b.test", Port: 443, Methods: map[string]int{"G\x1bT": 1}, Allowed: 1}},
			Refused:  []event.Refusal{{Kind: event.RefusedKernel, What: "\x1b[1m", Reason: "\x9b", Count: 1}},
		}}},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			if err := NewAudit().WriteTable(&got, s); err != nil {
				t.Fatal(err)
			}
			if strings.ContainsRune(got.String(), '\x1b') {
				t.Error("an escape character reached the table")
			}
			for _, l := range strings.Split(got.String(), "\n") {
				if strings.TrimRight(l, " ") != l {
					t.Errorf("trailing spaces: %q", l)
				}
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("table changed (go test -update rewrites it):\n got:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}

// TestAuditTableFromJSON: the table depends only on the summary, so one
// read back from --log-json prints the same.
func TestAuditTableFromJSON(t *testing.T) {
	var buf bytes.Buffer
	s := wantSummary()
	NewJSON(&buf).Emit(event.Event{Type: event.TypeSummary, Summary: &s})
	var e event.Event
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	NewAudit().WriteTable(&a, s)
	NewAudit().WriteTable(&b, *e.Summary)
	if a.String() != b.String() {
		t.Errorf("from JSON:\n%s\nwant\n%s", b.String(), a.String())
	}
}

// TestAuditMergeAmbiguous: an entry without exe joins the entry sharing
// its pid, and stays apart when its comm names two programs and no pid
// says which.
func TestAuditMergeAmbiguous(t *testing.T) {
	a := NewAudit()
	for _, e := range []event.Event{
		{Type: event.TypeRequest, Verdict: event.Allow, PID: 1, Comm: "x", Exe: "/a/x", Host: "a.test", Port: 80},
		{Type: event.TypeRequest, Verdict: event.Allow, PID: 2, Comm: "x", Exe: "/b/x", Host: "b.test", Port: 80},
		{Type: event.TypeDNS, PID: 2, Comm: "x", Name: "b.test"},
		{Type: event.TypeDNS, PID: 3, Comm: "x", Name: "c.test"},
		// Same comm and pid, another program: exec-only entries that match
		// nothing stay.
		{Type: event.TypeExec, PID: 9, Comm: "x", Exe: "./x"},
	} {
		a.Emit(e)
	}
	var got []string
	for _, p := range a.Summary(0, 0).Processes {
		got = append(got, p.Exe+" "+strings.Join(p.DNSNames, ","))
	}
	want := []string{" c.test", "./x ", "/a/x ", "/b/x b.test"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAuditIsBoundedAndSaysWhatItLeftOut(t *testing.T) {
	a := NewAudit()
	a.max = 10
	for i := 0; i < 50; i++ {
		a.Emit(event.Event{V: event.Version, Type: event.TypeDNS, PID: 7, Comm: "exfil", Name: fmt.Sprintf("n%d.example.test", i)})
	}
	s := a.Summary(0, 0)
	if len(s.Tree) != 1 || len(s.Tree[0].DNSNames) != 9 || s.Dropped != 41 {
		t.Errorf("got %+v, want 1 process with 9 names and 41 dropped", s)
	}
	var b strings.Builder
	a.WriteTable(&b, s)
	if !strings.Contains(b.String(), "41 more entries left out") {
		t.Errorf("table: got %q, want it to say what it left out", b.String())
	}
}

// TestAuditTreeParentsAndChildren: a child's connect is under the child,
// a forked child that never exec'd is a node of its own named by its
// events, and pids that name each other as parents (a reused pid) are
// still each listed once.
func TestAuditTreeParentsAndChildren(t *testing.T) {
	a := NewAudit()
	for _, e := range []event.Event{
		{Type: event.TypeRequest, Verdict: event.Allow, PID: 11, PPID: 10, Comm: "worker", Exe: "/app", Host: "child.test", Port: 443},
		{Type: event.TypeExec, PID: 10, PPID: 1, Comm: "app", Exe: "/app", Argv: []string{"/app", "--serve"}},
		{Type: event.TypeDNS, PID: 10, Comm: "app", Name: "Parent.Test."},
		{Type: event.TypeExec, PID: 20, PPID: 21, Comm: "a"},
		{Type: event.TypeExec, PID: 21, PPID: 20, Comm: "b"},
	} {
		a.Emit(e)
	}
	var got []string
	for _, n := range a.Summary(0, 0).Tree {
		got = append(got, fmt.Sprintf("%d:%d %s %s %v %v", n.Depth, n.PID, n.Comm, strings.Join(n.Argv, " "), n.DNSNames, len(n.Hosts)))
	}
	want := []string{
		"0:10 app /app --serve [Parent.Test] 0",
		"1:11 worker  [] 1",
		"0:20 a  [] 0",
		"1:21 b  [] 0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
