package report

import (
	"strings"
	"sync"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Audit aggregates events into what --audit prints at exit and what
// `ebpfjail report` draws: a node per process (pid), with its parent, what
// it ran, per host:port the methods, verdicts and bytes of its requests,
// the DNS names it asked for, and what was refused to it.
//
// Which event feeds what:
//
//	exec        the process: parent, comm, exe and the head of argv (the
//	            last exec of a pid wins)
//	request     the host:port entry: a method count, allowed or denied, bytes
//	dns         the process's DNS names, as asked (a trailing dot dropped),
//	            and the servers it sent them to
//	connection  with verdict deny, a refusal: of kind "tls" when the TLS
//	            handshake failed (most often: the client does not trust the
//	            CA; with the --no-mitm hint), else "connection" (the URL)
//	refused     a refusal of kind "kernel": what the kernel did not let
//	            the process do ("udp sendmsg 192.0.2.9:9999"), counted
//
// A process with no exec event (the command itself when its exec was not
// seen, a forked child that did not exec) is still a node, named by the
// comm, exe and ppid of its other events. Events without a pid go to node
// 0, "(unknown)". Summary events, and connection events with verdict
// allow, are ignored.
//
// Memory grows with the distinct processes, hosts, names and refusals, not
// with the number of events, and is bounded: what does not fit is counted.
type Audit struct {
	mu    sync.Mutex
	nodes map[uint32]*node
	// entries counts the distinct things held (processes, hosts, names,
	// refusals), bounded by max; what does not fit is counted in dropped.
	entries, max, dropped int
}

// maxAuditEntries bounds the aggregate: the jailed command chooses the
// names it asks for, and must not grow ebpfjail's memory without end.
const maxAuditEntries = 200_000

// The head of argv kept per process: enough to tell `npm view x` from
// `npm install`, bounded whatever the command line.
const (
	maxArgs   = 8
	maxArgLen = 120
)

// room reports whether one more entry fits, counting it either way.
func (a *Audit) room() bool {
	if a.entries >= a.max {
		a.dropped++
		return false
	}
	a.entries++
	return true
}

// node is one process.
type node struct {
	ppid      uint32
	comm, exe string // from its last exec, else from the first event that had them
	execd     bool
	procExe   string // exe of its request and connection events: the program at connect()
	argv      []string
	hosts     map[hostKey]*event.Host
	names     map[string]bool
	servers   map[string]bool
	refused   map[refusalKey]*event.Refusal
}

type hostKey struct {
	host string
	port int
}

type refusalKey struct{ kind, what string }

func newNode() *node {
	return &node{hosts: map[hostKey]*event.Host{}, names: map[string]bool{}, servers: map[string]bool{},
		refused: map[refusalKey]*event.Refusal{}}
}

// NewAudit returns an empty Audit.
func NewAudit() *Audit {
	return &Audit{nodes: map[uint32]*node{}, max: maxAuditEntries}
}

// Emit adds e to the aggregate.
func (a *Audit) Emit(e event.Event) {
	if a == nil {
		return
	}
	switch e.Type {
	case event.TypeRequest, event.TypeDNS, event.TypeExec, event.TypeRefused:
	case event.TypeConnection:
		if e.Verdict == event.Allow {
			return // not produced in schema v1; nothing was refused
		}
	default:
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nodes[e.PID]
	if n == nil {
		if !a.room() {
			return
		}
		n = newNode()
		a.nodes[e.PID] = n
	}
	n.identify(e)
	switch e.Type {
	case event.TypeRequest:
		a.request(n, e)
	case event.TypeDNS:
		if name := strings.TrimSuffix(e.Name, "."); name != "" && !n.names[name] && a.room() {
			n.names[name] = true
		}
		if e.Server != "" && !n.servers[e.Server] && a.room() {
			n.servers[e.Server] = true
		}
	case event.TypeConnection, event.TypeRefused:
		a.refusal(n, refusalOf(e))
	}
}

// identify fills what e says about its process.
func (n *node) identify(e event.Event) {
	if e.Type == event.TypeExec {
		n.execd = true
		n.comm, n.exe = e.Comm, e.Exe
		if e.PPID != 0 {
			n.ppid = e.PPID
		}
		n.argv = argvHead(e.Argv)
		return
	}
	if e.Type != event.TypeDNS && e.Exe != "" {
		n.procExe = e.Exe
	}
	if n.ppid == 0 {
		n.ppid = e.PPID
	}
	if !n.execd {
		if n.comm == "" {
			n.comm = e.Comm
		}
		if n.exe == "" {
			n.exe = e.Exe
		}
	}
}

func argvHead(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(argv), maxArgs+1))
	for i, a := range argv {
		if i == maxArgs {
			out = append(out, "...")
			break
		}
		out = append(out, shorten(a, maxArgLen))
	}
	return out
}

func (a *Audit) request(n *node, e event.Event) {
	host, port := hostPort(e)
	hk := hostKey{host, port}
	h := n.hosts[hk]
	if h == nil {
		if !a.room() {
			return
		}
		h = &event.Host{Host: host, Port: port, Methods: map[string]int{}}
		n.hosts[hk] = h
	}
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
}

func (a *Audit) refusal(n *node, r event.Refusal) {
	k := refusalKey{r.Kind, r.What}
	if old := n.refused[k]; old != nil {
		old.Count += r.Count
		return
	}
	if a.room() {
		n.refused[k] = &r
	}
}

// hintTLS is what a reader can do about a client that refused the CA.
const hintTLS = "client does not trust the CA: likely pinned or its own bundle; try --no-mitm "

// hintHandshake is the same for a handshake that failed otherwise.
const hintHandshake = "TLS handshake failed: if the client pins its server's certificate or brings its own CA bundle, try --no-mitm "

// refusalOf is the refusal a connection or refused event stands for.
func refusalOf(e event.Event) event.Refusal {
	host, port := hostPort(e)
	r := event.Refusal{Kind: event.RefusedConnection, What: e.URL, Reason: e.Reason, Count: 1}
	switch {
	case e.Type == event.TypeRefused:
		r.Kind, r.What, r.Count = event.RefusedKernel, refusedWhat(e), max(e.Count, 1)
		return r
	case strings.HasPrefix(e.Reason, UntrustedCA):
		r.Kind, r.Hint = event.RefusedTLS, hintTLS+host
	case strings.HasPrefix(e.Reason, "TLS handshake failed"):
		r.Kind, r.Hint = event.RefusedTLS, hintHandshake+host
	}
	if r.What == "" {
		scheme := e.Scheme
		switch {
		case scheme == "" && r.Kind == event.RefusedTLS:
			scheme = "https"
		case scheme == "":
			scheme = "tcp"
		}
		r.What = scheme + "://" + joinHostPort(host, port)
	}
	return r
}

// blockedEntry is a refusal as the summary's per-executable list names
// it: what was attempted, with the reason's gist unless it is the
// expected non-HTTP refusal or one of the kernel's (whose what says it).
func blockedEntry(r event.Refusal) string {
	switch {
	case r.Reason == "" || r.Reason == "non-HTTP" || r.Kind == event.RefusedKernel:
		return r.What
	case strings.HasPrefix(r.Reason, UntrustedCA):
		return r.What + " (client does not trust the CA)"
	}
	gist, _, _ := strings.Cut(r.Reason, ":")
	return r.What + " (" + gist + ")"
}
