package report

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Audit aggregates events into what --audit prints at exit: per process
// (comm and exe), its pids, and per host:port the methods, verdicts and
// bytes of its requests, the DNS names it looked up, and the connections
// ebpfjail refused.
//
// Which event feeds what:
//
//	request     the host:port entry: a method count, allowed or denied, bytes
//	dns         the process's DNS names (as asked, no trailing dot)
//	connection  with verdict deny, a blocked entry: its URL ("tcp://host:port"),
//	            followed by the reason's first words in parentheses unless it
//	            is the plain non-HTTP case ("https://x.test:443 (TLS handshake
//	            failed)")
//	exec        the process and its pid, so a process that never touched the
//	            network still shows up
//	refused     a blocked entry: what the kernel refused ("udp sendmsg
//	            192.0.2.9:9999", "socket inet raw icmp")
//
// Every one of those events with a pid adds it to its process. Summary
// events, and connection events with verdict allow (which schema v1 does
// not produce), are ignored. Memory grows with the distinct processes,
// hosts, names and blocked attempts, not with the number of events.
//
// The producers do not all know the same things about a process: request
// and connection events have the resolved /proc/PID/exe
// (/usr/bin/python3.12), exec events the path given to execve
// (/usr/bin/python3), DNS events no exe at all. So that one program is one
// entry, [Audit.Summary] folds the weaker entries into the entry with a
// /proc exe: an entry whose exe came only from exec events joins the entry
// with the same comm that shares one of its pids; then an entry without an
// exe joins the entry with the same comm and an exe that shares a pid, or,
// failing that, the only entry with that comm and an exe. What cannot be
// matched stays an entry of its own.
type Audit struct {
	mu    sync.Mutex
	procs map[procKey]*procAgg
	// entries counts the distinct things held (processes, pids, hosts,
	// names, blocked attempts), bounded by max; what does not fit is
	// counted in dropped.
	entries, max, dropped int
}

// maxAuditEntries bounds the aggregate: the jailed command chooses the
// names it asks for, and must not grow ebpfjail's memory without end.
const maxAuditEntries = 200_000

// room reports whether one more entry fits, counting it either way.
func (a *Audit) room() bool {
	if a.entries >= a.max {
		a.dropped++
		return false
	}
	a.entries++
	return true
}

// procKey is an entry of the aggregate. Events that know their program
// (a /proc exe) aggregate per (comm, exe); the others per process too
// (pid set), so that each can be folded into its own program's entry.
type procKey struct {
	comm, exe string
	pid       uint32
}

func (k procKey) compare(o procKey) int {
	return cmp.Or(cmp.Compare(k.comm, o.comm), cmp.Compare(k.exe, o.exe), cmp.Compare(k.pid, o.pid))
}

type procAgg struct {
	procExe bool // exe came from a request or connection event (/proc)
	pids    map[uint32]bool
	hosts   map[hostKey]*event.Host
	names   map[string]bool
	blocked map[string]bool
}

type hostKey struct {
	host string
	port int
}

func newProcAgg() *procAgg {
	return &procAgg{
		pids:    map[uint32]bool{},
		hosts:   map[hostKey]*event.Host{},
		names:   map[string]bool{},
		blocked: map[string]bool{},
	}
}

// NewAudit returns an empty Audit.
func NewAudit() *Audit {
	return &Audit{procs: map[procKey]*procAgg{}, max: maxAuditEntries}
}

// Emit adds e to the aggregate.
func (a *Audit) Emit(e event.Event) {
	if a == nil {
		return
	}
	switch e.Type {
	case event.TypeRequest, event.TypeDNS, event.TypeExec:
	case event.TypeConnection:
		if e.Verdict == event.Allow {
			return // not produced in schema v1; nothing was refused
		}
	case event.TypeRefused:
	default:
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := procKey{comm: e.Comm, exe: e.Exe}
	if e.Exe == "" || e.Type == event.TypeExec {
		k.pid = e.PID
	}
	p := a.procs[k]
	if p == nil {
		if !a.room() {
			return
		}
		p = newProcAgg()
		a.procs[k] = p
	}
	if e.PID != 0 && !p.pids[e.PID] && a.room() {
		p.pids[e.PID] = true
	}
	switch e.Type {
	case event.TypeRequest:
		p.procExe = p.procExe || e.Exe != ""
		host, port := hostPort(e)
		hk := hostKey{host, port}
		if p.hosts[hk] == nil && !a.room() {
			return
		}
		h := p.host(hk)
		if e.Method != "" {
			h.Methods[e.Method]++
		}
		if e.Verdict == event.Allow {
			h.Allowed++
		} else {
			h.Denied++ // no verdict reports as denied: the jail fails closed
		}
		h.BytesUp += e.BytesUp
		h.BytesDown += e.BytesDown
	case event.TypeDNS:
		if name := strings.TrimSuffix(e.Name, "."); name != "" && !p.names[name] && a.room() {
			p.names[name] = true
		}
	case event.TypeConnection:
		p.procExe = p.procExe || e.Exe != ""
		if b := blockedEntry(e); !p.blocked[b] && a.room() {
			p.blocked[b] = true
		}
	case event.TypeRefused:
		p.procExe = p.procExe || e.Exe != ""
		if b := refusedWhat(e); !p.blocked[b] && a.room() {
			p.blocked[b] = true
		}
	}
}

// host returns p's entry for k, creating it.
func (p *procAgg) host(k hostKey) *event.Host {
	h := p.hosts[k]
	if h == nil {
		h = &event.Host{Host: k.host, Port: k.port, Methods: map[string]int{}}
		p.hosts[k] = h
	}
	return h
}

// absorb adds what q holds to p.
func (p *procAgg) absorb(q *procAgg) {
	p.procExe = p.procExe || q.procExe
	for pid := range q.pids {
		p.pids[pid] = true
	}
	for k, qh := range q.hosts {
		h := p.host(k)
		for m, n := range qh.Methods {
			h.Methods[m] += n
		}
		h.Allowed += qh.Allowed
		h.Denied += qh.Denied
		h.BytesUp += qh.BytesUp
		h.BytesDown += qh.BytesDown
	}
	for n := range q.names {
		p.names[n] = true
	}
	for b := range q.blocked {
		p.blocked[b] = true
	}
}

func (p *procAgg) sharesPID(q *procAgg) bool {
	for pid := range q.pids {
		if p.pids[pid] {
			return true
		}
	}
	return false
}

// blockedEntry names a refused connection: its URL, else scheme://host:port,
// with the reason's gist unless it is the expected non-HTTP refusal.
func blockedEntry(e event.Event) string {
	s := e.URL
	if s == "" {
		host, port := hostPort(e)
		scheme := e.Scheme
		if scheme == "" {
			scheme = "tcp"
		}
		s = scheme + "://" + joinHostPort(host, port)
	}
	if e.Reason == "" || e.Reason == "non-HTTP" {
		return s
	}
	if strings.HasPrefix(e.Reason, UntrustedCA) {
		return s + " (client does not trust the CA)"
	}
	gist, _, _ := strings.Cut(e.Reason, ":")
	return s + " (" + gist + ")"
}

// Summary returns what the Audit has seen, sorted so that the same events
// give the same summary whatever their order: processes by comm then exe,
// pids ascending, hosts by name then port, names and blocked attempts
// alphabetically. The result shares nothing with the Audit, which can go
// on aggregating.
func (a *Audit) Summary(exitStatus int, duration time.Duration) event.Summary {
	s := event.Summary{
		ExitStatus: exitStatus,
		// Microsecond resolution, like the events' durations.
		DurationMS: math.Round(float64(duration)/float64(time.Microsecond)) / 1000,
		Processes:  []event.Process{},
	}
	if a == nil {
		return s
	}
	a.mu.Lock()
	s.Dropped = a.dropped
	work := make(map[procKey]*procAgg, len(a.procs))
	for k, p := range a.procs {
		c := newProcAgg()
		c.absorb(p) // a deep copy: the merges below must not touch the Audit
		work[k] = c
	}
	a.mu.Unlock()
	merge(work)
	// What could not be folded is combined per program.
	byProg := map[procKey]*procAgg{}
	for k, p := range work {
		k.pid = 0
		if q := byProg[k]; q != nil {
			q.absorb(p)
		} else {
			byProg[k] = p
		}
	}

	for k, p := range byProg {
		out := event.Process{Comm: k.comm, Exe: k.exe, PIDs: []uint32{}}
		for pid := range p.pids {
			out.PIDs = append(out.PIDs, pid)
		}
		slices.Sort(out.PIDs)
		for _, h := range p.hosts {
			out.Hosts = append(out.Hosts, *h)
		}
		slices.SortFunc(out.Hosts, func(x, y event.Host) int {
			return cmp.Or(cmp.Compare(x.Host, y.Host), cmp.Compare(x.Port, y.Port))
		})
		out.DNSNames = sortedKeys(p.names)
		out.Blocked = sortedKeys(p.blocked)
		s.Processes = append(s.Processes, out)
	}
	slices.SortFunc(s.Processes, func(x, y event.Process) int {
		return cmp.Or(cmp.Compare(x.Comm, y.Comm), cmp.Compare(x.Exe, y.Exe))
	})
	return s
}

// merge folds the entries that know less about their program into an
// entry that knows more (see [Audit]). Keys are visited in sorted order
// and the first match wins, so the result does not depend on map order.
func merge(work map[procKey]*procAgg) {
	keys := func() []procKey {
		ks := make([]procKey, 0, len(work))
		for k := range work {
			ks = append(ks, k)
		}
		slices.SortFunc(ks, procKey.compare)
		return ks
	}
	// An exe from execve (maybe a symlink, maybe relative) joins the
	// /proc exe of the same process.
	for _, k := range keys() {
		p := work[k]
		if k.exe == "" || p.procExe {
			continue
		}
		for _, t := range keys() {
			if q := work[t]; t != k && t.comm == k.comm && q.procExe && q.sharesPID(p) {
				q.absorb(p)
				delete(work, k)
				break
			}
		}
	}
	// No exe at all (DNS events, a process gone before /proc was read):
	// the program that had the same pid, else the only program of that
	// comm.
	for _, k := range keys() {
		if k.exe != "" {
			continue
		}
		p := work[k]
		var target *procAgg
		progs := map[string]bool{}
		for _, t := range keys() {
			if t.comm != k.comm || t.exe == "" {
				continue
			}
			q := work[t]
			if q.sharesPID(p) {
				target, progs = q, nil
				break
			}
			if !progs[t.exe] {
				progs[t.exe] = true
				if target == nil {
					target = q
				}
			}
		}
		if target != nil && len(progs) <= 1 {
			target.absorb(p)
			delete(work, k)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// maxPIDs is how many pids a process line lists before "(+N more)": a
// shell loop can fork thousands, and the summary event keeps them all.
const maxPIDs = 8

// WriteTable prints s as the --audit table: a totals line, then per
// process a line with comm, exe and pids, and under it a line per
// host:port and lines for its DNS names and blocked attempts. Columns are
// aligned across the whole table; bytes are in binary units; strings from
// the jailed processes are cleaned of control characters. It depends only
// on s, so a summary read back from --log-json prints the same table.
//
//	ebpfjail audit: 2 processes, 3 requests (2 allowed, 1 denied), 1 DNS name, 1 blocked
//	curl  /usr/bin/curl        pids 1234 1240
//	  allowed.test:443  GET 2   allowed 2  denied 0  up 180 B  down 1.2 KiB
//	  denied.test:443   POST 1  allowed 0  denied 1  up   0 B  down     0 B
//	  dns: allowed.test
//	nc    /usr/bin/nc.openbsd  pid 99
//	  blocked: tcp://ssh.test:22
func (a *Audit) WriteTable(w io.Writer, s event.Summary) error {
	var b strings.Builder
	var requests, allowed, denied, blocked int
	names := map[string]bool{}
	// Column widths over the whole table.
	var wComm, wExe, wHost, wMeth, wAllow, wDeny, wUp, wDown int
	type hostRow struct{ host, methods, allowed, denied, up, down string }
	rows := make([][]hostRow, len(s.Processes))
	for i, p := range s.Processes {
		wComm = max(wComm, width(procComm(p)))
		wExe = max(wExe, width(clean(p.Exe)))
		for _, h := range p.Hosts {
			requests += h.Allowed + h.Denied
			allowed += h.Allowed
			denied += h.Denied
			r := hostRow{
				host:    clean(joinHostPort(h.Host, h.Port)),
				methods: methodList(h.Methods),
				allowed: strconv.Itoa(h.Allowed),
				denied:  strconv.Itoa(h.Denied),
				up:      humanBytes(h.BytesUp),
				down:    humanBytes(h.BytesDown),
			}
			wHost, wMeth = max(wHost, width(r.host)), max(wMeth, width(r.methods))
			wAllow, wDeny = max(wAllow, len(r.allowed)), max(wDeny, len(r.denied))
			wUp, wDown = max(wUp, len(r.up)), max(wDown, len(r.down))
			rows[i] = append(rows[i], r)
		}
		for _, n := range p.DNSNames {
			names[n] = true
		}
		blocked += len(p.Blocked)
	}
	fmt.Fprintf(&b, "ebpfjail audit: %s, %s (%d allowed, %d denied), %s, %d blocked\n",
		plural(len(s.Processes), "process", "processes"), plural(requests, "request", "requests"),
		allowed, denied, plural(len(names), "DNS name", "DNS names"), blocked)
	for i, p := range s.Processes {
		line := pad(procComm(p), wComm)
		if wExe > 0 {
			line += "  " + pad(clean(p.Exe), wExe)
		}
		if len(p.PIDs) > 0 {
			line += "  " + pidList(p.PIDs)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		for _, r := range rows[i] {
			line := fmt.Sprintf("  %s  %s  allowed %*s  denied %*s  up %*s  down %*s",
				pad(r.host, wHost), pad(r.methods, wMeth), wAllow, r.allowed, wDeny, r.denied, wUp, r.up, wDown, r.down)
			b.WriteString(line + "\n")
		}
		if len(p.DNSNames) > 0 {
			b.WriteString("  dns: " + clean(strings.Join(p.DNSNames, ", ")) + "\n")
		}
		if len(p.Blocked) > 0 {
			b.WriteString("  blocked: " + clean(strings.Join(p.Blocked, ", ")) + "\n")
		}
		if len(p.Hosts) == 0 && len(p.DNSNames) == 0 && len(p.Blocked) == 0 {
			b.WriteString("  no network activity\n")
		}
	}
	if s.Dropped > 0 {
		fmt.Fprintf(&b, "(%d more entries left out: the table is bounded; --log-json has every event)\n", s.Dropped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// procComm is a process's name for the table; events without one (a DNS
// query whose sender could not be found) group under "(unknown)".
func procComm(p event.Process) string {
	if p.Comm == "" {
		return "(unknown)"
	}
	return clean(p.Comm)
}

// methodList writes method counts as "GET 2 POST 1", most used first, then
// by name; "-" when no method was recorded.
func methodList(m map[string]int) string {
	type mc struct {
		m string
		n int
	}
	var l []mc
	for k, v := range m {
		l = append(l, mc{k, v})
	}
	slices.SortFunc(l, func(x, y mc) int { return cmp.Or(cmp.Compare(y.n, x.n), cmp.Compare(x.m, y.m)) })
	var words []string
	for _, e := range l {
		words = append(words, clean(e.m)+" "+strconv.Itoa(e.n))
	}
	if len(words) == 0 {
		return "-"
	}
	return strings.Join(words, " ")
}

// pidList writes "pids 1 2 3", at most maxPIDs of them.
func pidList(pids []uint32) string {
	words := []string{"pids"}
	if len(pids) == 1 {
		words[0] = "pid"
	}
	for i, p := range pids {
		if i == maxPIDs {
			words = append(words, fmt.Sprintf("(+%d more)", len(pids)-maxPIDs))
			break
		}
		words = append(words, strconv.FormatUint(uint64(p), 10))
	}
	return strings.Join(words, " ")
}

// pad left-aligns s in a column n runes wide.
func pad(s string, n int) string {
	if w := width(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

// width counts runes: close enough to terminal columns for names, and
// right for the ASCII that most of them are.
func width(s string) int { return utf8.RuneCountInString(s) }
