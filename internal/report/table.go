package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// WriteTable prints s as the --audit table: a totals line, then the
// process tree, a line per process (comm, pid, exe, the head of its
// argv) and under it a line per host:port it contacted, its DNS names,
// and a line per refused attempt. Host columns are aligned across the
// table; bytes are in binary units; strings from the jailed processes are
// cleaned of control characters. It depends only on s, so a summary read
// back from --log-json prints the same table.
//
//	ebpfjail audit: 2 processes, 3 requests (2 allowed, 1 denied), 1 DNS name, 1 refused
//	sh pid 1200  /bin/sh  sh -c 'curl ...; nc ssh.test 22'
//	├─ curl pid 1234  /usr/bin/curl  curl -s https://allowed.test/
//	│    allowed.test:443  GET 2   allowed 2  denied 0  up 180 B  down 1.2 KiB
//	│    denied.test:443   POST 1  allowed 0  denied 1  up   0 B  down     0 B
//	│    dns: allowed.test
//	└─ nc pid 1240  /usr/bin/nc.openbsd  nc ssh.test 22
//	     refused: tcp://ssh.test:22 (non-HTTP)
func (a *Audit) WriteTable(w io.Writer, s event.Summary) error {
	var b strings.Builder
	// Column widths over the whole table.
	var wHost, wMeth, wAllow, wDeny, wUp, wDown int
	prefixes := treePrefixes(s.Tree)
	type hostRow struct{ host, methods, allowed, denied, up, down string }
	rows := make([][]hostRow, len(s.Tree))
	for i, n := range s.Tree {
		for _, h := range n.Hosts {
			r := hostRow{
				host:    prefixes[i].detail + clean(joinHostPort(h.Host, h.Port)),
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
	}
	b.WriteString("ebpfjail audit: " + totals(s) + "\n")
	for i, n := range s.Tree {
		b.WriteString(prefixes[i].node + nodeLine(n) + "\n")
		for _, r := range rows[i] {
			line := fmt.Sprintf("%s  %s  allowed %*s  denied %*s  up %*s  down %*s",
				pad(r.host, wHost), pad(r.methods, wMeth), wAllow, r.allowed, wDeny, r.denied, wUp, r.up, wDown, r.down)
			b.WriteString(line + "\n")
		}
		if len(n.DNSNames) > 0 {
			b.WriteString(prefixes[i].detail + "dns: " + clean(strings.Join(n.DNSNames, ", ")) + "\n")
		}
		if len(n.DNSServers) > 0 {
			b.WriteString(prefixes[i].detail + "dns servers: " + clean(strings.Join(n.DNSServers, ", ")) + "\n")
		}
		for _, r := range n.Refused {
			b.WriteString(prefixes[i].detail + refusalLine(r) + "\n")
		}
	}
	if s.Dropped > 0 {
		fmt.Fprintf(&b, "(%d more entries left out: the table is bounded; --log-json has every event)\n", s.Dropped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// totals sums up a summary: "2 processes, 3 requests (2 allowed, 1
// denied), 1 DNS name, 1 refused".
func totals(s event.Summary) string {
	var requests, allowed, denied, refused int
	names := map[string]bool{}
	for _, n := range s.Tree {
		for _, h := range n.Hosts {
			requests += h.Allowed + h.Denied
			allowed += h.Allowed
			denied += h.Denied
		}
		for _, name := range n.DNSNames {
			names[name] = true
		}
		for _, r := range n.Refused {
			refused += r.Count
		}
	}
	return fmt.Sprintf("%s, %s (%d allowed, %d denied), %s, %d refused",
		plural(len(s.Tree), "process", "processes"), plural(requests, "request", "requests"),
		allowed, denied, plural(len(names), "DNS name", "DNS names"), refused)
}

// nodeLine names a process: "curl pid 1234  /usr/bin/curl  curl -s URL".
func nodeLine(n event.Node) string {
	comm := clean(n.Comm)
	if comm == "" {
		comm = "(unknown)"
	}
	words := []string{comm}
	if n.PID != 0 {
		words[0] += " pid " + strconv.FormatUint(uint64(n.PID), 10)
	}
	if n.Exe != "" {
		words = append(words, clean(n.Exe))
	}
	if len(n.Argv) > 0 {
		args := make([]string, len(n.Argv))
		for i, a := range n.Argv {
			args[i] = shellQuote(a)
		}
		words = append(words, shorten(clean(strings.Join(args, " ")), 100))
	}
	return strings.Join(words, "  ")
}

// refusalLine is one refused attempt; a client that did not trust the CA
// is told apart, with what to do about it.
func refusalLine(r event.Refusal) string {
	line := "refused: " + clean(r.What)
	switch {
	case r.Kind == event.RefusedTLS:
		line = "TLS handshake failed: " + clean(r.What) + " (" + clean(r.Hint) + ")"
	case r.Kind == event.RefusedKernel && r.Reason != "":
		line = "refused by the kernel: " + clean(r.What) + " (" + clean(r.Reason) + ")"
	case r.Kind == event.RefusedKernel:
		line = "refused by the kernel: " + clean(r.What)
	case r.Reason != "" && r.Reason != "non-HTTP":
		gist, _, _ := strings.Cut(r.Reason, ":")
		line += " (" + clean(gist) + ")"
	case r.Reason == "non-HTTP":
		line += " (non-HTTP)"
	}
	if r.Count > 1 {
		line += " ×" + strconv.Itoa(r.Count)
	}
	return line
}

// prefix is what goes before a node's line and before its detail lines
// to draw the tree.
type prefix struct{ node, detail string }

// treePrefixes draws the tree of nodes (in the order of Summary.Tree:
// parents first, depth first) with box-drawing characters.
func treePrefixes(nodes []event.Node) []prefix {
	// last[i]: no later sibling of node i.
	last := make([]bool, len(nodes))
	for i, n := range nodes {
		last[i] = true
		for _, m := range nodes[i+1:] {
			if m.Depth < n.Depth {
				break
			}
			if m.Depth == n.Depth {
				last[i] = false
				break
			}
		}
	}
	out := make([]prefix, len(nodes))
	var open []bool // per depth: the ancestor at that depth has later siblings
	for i, n := range nodes {
		open = append(open[:min(len(open), n.Depth)], !last[i])
		var b strings.Builder
		for d := 1; d < n.Depth; d++ {
			b.WriteString(bar(open[d]))
		}
		p := prefix{node: b.String(), detail: b.String()}
		if n.Depth > 0 {
			p.node += "└─ "
			if !last[i] {
				p.node = p.node[:len(p.node)-len("└─ ")] + "├─ "
			}
			p.detail += bar(!last[i])
		}
		// A bar down to the node's children, if it has any.
		p.detail += bar(i+1 < len(nodes) && nodes[i+1].Depth > n.Depth)
		out[i] = p
	}
	return out
}

func bar(open bool) string {
	if open {
		return "│  "
	}
	return "   "
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
