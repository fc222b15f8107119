package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// maxLine bounds one event line: a URL is at most a few kilobytes, so a
// longer line is not something --log-json wrote.
const maxLine = 1 << 20

// ReadError is a session file that cannot be read, or a line of it that is
// not an event (Line > 0).
type ReadError struct {
	Path string
	Line int
	Err  error
}

func (e *ReadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("read %s: %v", e.Path, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// Decision is one recorded rule evaluation: a request or a DNS lookup.
type Decision struct {
	Line    int
	Event   event.Event
	Request *rules.Request // what the rule saw, rebuilt
	// Allowed is what ebpfjail did (the event's verdict); RuleAllowed what
	// the rule answered (see Recorded).
	Allowed, RuleAllowed bool
}

// Session is what a --log-json file recorded.
type Session struct {
	Path      string
	Decisions []Decision // in file order
	// NotRuled counts requests and lookups no rule decided: refused before
	// the rule, answered by --dns fake, or lookups of an --audit session.
	NotRuled int
	// FakeDNS says lookups were answered with stand-in addresses (no rule
	// decided them); they are in FakeLookups, not in Decisions.
	FakeDNS     bool
	FakeLookups []Decision
	// AuditLookups are the lookups of an --audit session: answered (in
	// forward mode, for real), with no rule's answer recorded.
	AuditLookups []Decision
	Events       int  // lines read
	audit        bool // --audit: lookups record no rule answer
}

// ReadFile reads the session in path ("-" for stdin).
func ReadFile(path string) (*Session, error) {
	if path == "-" {
		return Read(os.Stdin, "stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &ReadError{Path: path, Err: err}
	}
	defer f.Close()
	return Read(f, path)
}

// Read reads a session from r; name is what errors call it.
func Read(r io.Reader, name string) (*Session, error) {
	events, lines, err := scan(r, name)
	if err != nil {
		return nil, err
	}
	s := &Session{Path: name, Events: len(events), FakeDNS: fakeDNS(events), audit: audited(events)}
	procs := knownProcs(events)
	for i, e := range events {
		switch e.Type {
		case event.TypeRequest:
			s.addRequest(lines[i], e)
		case event.TypeDNS:
			s.addLookup(lines[i], e, procs)
		}
	}
	return s, nil
}

// scan parses every line; types it does not know are kept and ignored
// later, as the schema asks of consumers.
func scan(r io.Reader, name string) ([]event.Event, []int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var events []event.Event
	var lines []int
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, nil, &ReadError{Path: name, Line: n, Err: fmt.Errorf("not a JSON event: %w", err)}
		}
		if e.V != event.Version || e.Type == "" {
			return nil, nil, &ReadError{Path: name, Line: n, Err: fmt.Errorf("not a version-%d event (v %d, type %q)", event.Version, e.V, e.Type)}
		}
		events = append(events, e)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, &ReadError{Path: name, Line: n + 1, Err: fmt.Errorf("line longer than %d bytes", maxLine)}
		}
		return nil, nil, &ReadError{Path: name, Err: err}
	}
	return events, lines, nil
}

func (s *Session) addRequest(line int, e event.Event) {
	allow, ok := Recorded(e)
	if !ok || e.Host == "" || e.Scheme == "" {
		s.NotRuled++
		return
	}
	var u *url.URL
	if e.Method != "CONNECT" {
		u, _ = url.Parse(e.URL)
	}
	proc := rules.Proc{PID: e.PID, PPID: e.PPID, UID: e.UID, Comm: e.Comm, Exe: e.Exe}
	req := rules.NewRequest(e.Method, rules.Dest{Scheme: e.Scheme, Host: e.Host, Port: e.Port}, u, "127.0.0.1", proc)
	if e.URL != "" {
		// The event is the URL the rule saw, byte for byte.
		req.URL = e.URL
	}
	s.Decisions = append(s.Decisions, Decision{Line: line, Event: e, Request: req, Allowed: e.Verdict == event.Allow, RuleAllowed: allow})
}

// addLookup rebuilds a lookup as the DNS shim asks the rule in --dns
// forward mode: QUERY dns://name, port 53.
func (s *Session) addLookup(line int, e event.Event, procs map[uint32]rules.Proc) {
	allow, ok := Recorded(e)
	if !ok || e.Name == "" {
		s.NotRuled++
		return
	}
	proc := rules.Proc{PID: e.PID, PPID: e.PPID, UID: e.UID, Comm: e.Comm, Exe: e.Exe}
	if p, ok := procs[e.PID]; ok && e.PID != 0 {
		if proc.Exe == "" {
			proc.Exe = p.Exe
		}
		if proc.PPID == 0 {
			proc.PPID = p.PPID
		}
	}
	req := rules.NewRequest("QUERY", rules.Dest{Scheme: "dns", Host: hostname.Fold(e.Name), Port: 53}, nil, "127.0.0.1", proc)
	d := Decision{Line: line, Event: e, Request: req, Allowed: e.Verdict == event.Allow, RuleAllowed: allow}
	switch {
	case s.FakeDNS:
		s.NotRuled++
		s.FakeLookups = append(s.FakeLookups, d)
		return
	case s.audit && !strings.HasPrefix(e.Reason, "audit"):
		// --audit answers every lookup and does not record the rule's
		// answer on a lookup: nothing to compare with.
		s.NotRuled++
		s.AuditLookups = append(s.AuditLookups, d)
		return
	}
	s.Decisions = append(s.Decisions, d)
}

// knownProcs maps a pid to its process as a request event recorded it
// (the kernel's record at connect(), which the DNS shim gives its rule
// too), or else as its exec event did (the path given to execve, which for
// a #! script is the script, not the interpreter the kernel records).
func knownProcs(events []event.Event) map[uint32]rules.Proc {
	m := map[uint32]rules.Proc{}
	fromExec := map[uint32]bool{}
	for _, e := range events {
		if e.PID == 0 || e.Exe == "" {
			continue
		}
		_, seen := m[e.PID]
		switch {
		case e.Type == event.TypeRequest && (!seen || fromExec[e.PID]):
			m[e.PID], fromExec[e.PID] = rules.Proc{PPID: e.PPID, Exe: e.Exe}, false
		case e.Type == event.TypeExec && !seen:
			m[e.PID], fromExec[e.PID] = rules.Proc{PPID: e.PPID, Exe: e.Exe}, true
		}
	}
	return m
}

// audited reports whether the session ran with --audit.
func audited(events []event.Event) bool {
	for _, e := range events {
		if e.Type == event.TypeRequest && (e.Reason == "audit" || strings.HasPrefix(e.Reason, "audit: ")) {
			return true
		}
	}
	return false
}

// synthetic4 holds the stand-in IPv4 addresses of --dns fake.
var synthetic4 = netip.MustParsePrefix("198.18.0.0/15")

// fakeDNS reports whether the session ran with --dns fake: some lookup was
// answered with a stand-in IPv4 address and none was refused (fake mode
// refuses no name). A session has one DNS mode; a forward-mode upstream
// answering from the benchmarking range 198.18.0.0/15 would be odd. (The
// stand-in IPv6 addresses are a random ULA, which real networks use too:
// they prove nothing.)
func fakeDNS(events []event.Event) bool {
	fake := false
	for _, e := range events {
		if e.Type != event.TypeDNS {
			continue
		}
		if e.Verdict == event.Deny {
			return false
		}
		if a, err := netip.ParseAddr(e.Answer); err == nil && synthetic4.Contains(a.Unmap()) {
			fake = true
		}
	}
	return fake
}
