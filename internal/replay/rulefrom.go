package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// grant is what one executable was allowed to do with one destination.
type grant struct {
	scheme, host string
	port         int
	exe          string
	methods      map[string]int
	comms        map[string]bool
	pids         map[uint32]bool
	count        int
	first        time.Time
	line         int
	// alsoDenied counts requests of the same kind (a method in methods)
	// the session denied: a rule per host cannot tell them apart.
	alsoDenied int
}

// name is one name looked up and allowed.
type name struct {
	name          string
	qtypes, comms map[string]bool
	count         int
	first         time.Time
	line          int
}

// Generate writes a JavaScript rule (the --js-file kind) that allows
// exactly the requests s was allowed to make, per executable, and the
// names it was allowed to look up, and denies anything else. Every entry
// says in a comment where it came from. The output depends only on s: its
// entries are sorted.
//
// After a --dns fake session, where every name was answered without a
// rule and a rerun in that mode answers them again whatever the rule says,
// a name is allowed only if an allowed request went to it too: a name
// looked up and never contacted is how a program leaks data through DNS,
// and a person should decide it before --dns forward sends it out. Those
// names are listed in a comment instead. (An --audit session in forward
// mode did send them: its names are allowed, so a rerun behaves the same.)
func Generate(w io.Writer, s *Session) error {
	grants, names, lookedUp := collect(s)
	var b strings.Builder
	fmt.Fprintf(&b, "// Written by: ebpfjail rule-from %s\n", comment(s.Path))
	b.WriteString("// It allows what that session was allowed to do, and denies anything else.\n")
	b.WriteString("// Use it with --js-file.\n")
	b.WriteString("//\n// Requests: r.scheme, r.host, r.port, one of the methods, and the process's\n")
	b.WriteString("// executable (exe \"\": the session did not record it, so any process).\n")
	b.WriteString("const requests = [\n")
	for _, g := range grants {
		writeGrant(&b, g)
	}
	b.WriteString("];\n\n// Names a lookup may ask (r.scheme \"dns\"); the rule decides them with --dns forward.\n")
	b.WriteString("const lookups = [\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  // %s\n  %s,\n", nameNote(n), jsString(n.name))
	}
	b.WriteString("];\n")
	if len(lookedUp) > 0 {
		b.WriteString("\n// Looked up under --dns fake (answered without a rule), but no allowed request\n")
		b.WriteString("// went to them, so not allowed: --dns forward would refuse them. Move a name\n")
		b.WriteString("// into lookups to allow it.\n")
		for _, n := range lookedUp {
			fmt.Fprintf(&b, "//   %s, // %s\n", jsString(n.name), nameNote(n))
		}
	}
	b.WriteString(`
r.scheme === "dns"
  ? lookups.includes(r.host)
  : requests.some(a => a.scheme === r.scheme && a.host === r.host && a.port === r.port &&
      a.methods.includes(r.method) && (a.exe === "" || a.exe === r.proc.exe));
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// nameNote says who looked n up, how often, and when first.
func nameNote(n *name) string {
	return fmt.Sprintf("%s: %d lookup(s) (%s), first at %s, line %d", comment(joinKeys(n.comms)), n.count,
		comment(joinKeys(n.qtypes)), stamp(n.first), n.line)
}

func writeGrant(b *strings.Builder, g *grant) {
	var methods []string
	for _, m := range slices.Sorted(maps.Keys(g.methods)) {
		methods = append(methods, m+" ×"+strconv.Itoa(g.methods[m]))
	}
	var pids []string
	for _, p := range slices.Sorted(maps.Keys(g.pids)) {
		pids = append(pids, strconv.FormatUint(uint64(p), 10))
	}
	who := joinKeys(g.comms)
	if g.exe != "" {
		who += " (" + g.exe + ")"
	}
	fmt.Fprintf(b, "  // %s, pid %s: %d request(s) (%s), first at %s, line %d\n", comment(who),
		strings.Join(pids, " "), g.count, comment(strings.Join(methods, ", ")), stamp(g.first), g.line)
	if g.alsoDenied > 0 {
		fmt.Fprintf(b, "  // The session also denied %d request(s) of these methods here (another path, a\n", g.alsoDenied)
		b.WriteString("  // person's answer, a size limit): this entry allows them. Narrow it by r.path if need be.\n")
	}
	fmt.Fprintf(b, "  {exe: %s, scheme: %s, host: %s, port: %d, methods: [%s]},\n",
		jsString(g.exe), jsString(g.scheme), jsString(g.host), g.port, jsList(slices.Sorted(maps.Keys(g.methods))))
}

// collect groups the allowed decisions: grants sorted by host, port,
// scheme, exe; names sorted; and the names of a --dns fake session that
// were only looked up.
func collect(s *Session) ([]*grant, []*name, []*name) {
	grants := map[string]*grant{}
	names := map[string]*name{}
	contacted := map[string]bool{}
	for _, d := range s.Decisions {
		r := d.Request
		if !d.Allowed {
			continue
		}
		if r.Scheme == "dns" {
			addName(names, d)
			continue
		}
		contacted[r.Host] = true
		k := requestKey(r)
		g := grants[k]
		if g == nil {
			g = &grant{scheme: r.Scheme, host: r.Host, port: r.Port, exe: r.Proc.Exe, methods: map[string]int{},
				comms: map[string]bool{}, pids: map[uint32]bool{}, first: d.Event.Time, line: d.Line}
			grants[k] = g
		}
		g.methods[r.Method]++
		g.comms[r.Proc.Comm] = true
		g.pids[r.Proc.PID] = true
		g.count++
		if d.Event.Time.Before(g.first) {
			g.first, g.line = d.Event.Time, d.Line
		}
	}
	for _, d := range s.Decisions {
		if g := grants[requestKey(d.Request)]; g != nil && !d.Allowed && g.methods[d.Request.Method] > 0 {
			g.alsoDenied++
		}
	}
	for _, d := range s.AuditLookups {
		if d.Allowed {
			addName(names, d)
		}
	}
	only := map[string]*name{}
	for _, d := range s.FakeLookups {
		if contacted[d.Request.Host] {
			addName(names, d)
		} else {
			addName(only, d)
		}
	}
	gl := slices.SortedFunc(maps.Values(grants), func(a, b *grant) int {
		return strings.Compare(grantKey(a), grantKey(b))
	})
	return gl, sortedNames(names), sortedNames(only)
}

func sortedNames(m map[string]*name) []*name {
	return slices.SortedFunc(maps.Values(m), func(a, b *name) int { return strings.Compare(a.name, b.name) })
}

func requestKey(r *rules.Request) string {
	return strings.Join([]string{r.Host, strconv.Itoa(r.Port), r.Scheme, r.Proc.Exe}, "\x00")
}

func grantKey(g *grant) string {
	return fmt.Sprintf("%s\x00%05d\x00%s\x00%s", g.host, g.port, g.scheme, g.exe)
}

func addName(names map[string]*name, d Decision) {
	h := d.Request.Host
	n := names[h]
	if n == nil {
		n = &name{name: h, qtypes: map[string]bool{}, comms: map[string]bool{}, first: d.Event.Time, line: d.Line}
		names[h] = n
	}
	n.count++
	n.qtypes[d.Event.QType] = true
	n.comms[d.Request.Proc.Comm] = true
	if d.Event.Time.Before(n.first) {
		n.first, n.line = d.Event.Time, d.Line
	}
}

// joinKeys lists a set, sorted; "?" stands for the empty string (unknown).
func joinKeys(set map[string]bool) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if k == "" {
			k = "?"
		}
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999Z07:00") }

// jsString is s as a JavaScript string literal: JSON's, which escapes the
// line separators JavaScript ends a line at.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func jsList(list []string) string {
	var out []string
	for _, s := range list {
		out = append(out, jsString(s))
	}
	return strings.Join(out, ", ")
}

// comment makes s safe inside a // comment: no line break can end it early.
func comment(s string) string { return clean(s) }

// WriteRule writes Generate's rule to the file path (created or
// truncated), or to w when path is "".
func WriteRule(w io.Writer, path string, s *Session) error {
	if path == "" {
		return Generate(w, s)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := Generate(f, s); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
