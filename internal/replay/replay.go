package replay

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// Flip is one kind of decision that changes: the same direction, request
// (method and URL) and process, seen Count times.
type Flip struct {
	WasAllowed bool // allowed before, denied now; else the reverse
	Method     string
	URL        string
	Comm, Exe  string
	PIDs       []uint32 // ascending, distinct
	Count      int
	Reason     string // the new rule's reason, when it is not plainly "rule"
	FirstLine  int    // of the session file
}

// Result is what a rule would change in a session.
type Result struct {
	Compared int    // decisions evaluated
	Flips    []Flip // sorted: allowed→denied first, then by URL, process
	NotRuled int
}

// Changed counts the decisions that change.
func (r *Result) Changed() (toDeny, toAllow int) {
	for _, f := range r.Flips {
		if f.WasAllowed {
			toDeny += f.Count
		} else {
			toAllow += f.Count
		}
	}
	return toDeny, toAllow
}

// Compare evaluates engine on every decision of s, one at a time, in file
// order (a --proc or --sh rule sees them as it would live).
func Compare(ctx context.Context, engine rules.Engine, s *Session) *Result {
	res := &Result{Compared: len(s.Decisions), NotRuled: s.NotRuled}
	type key struct {
		was                    bool
		method, url, comm, exe string
	}
	index := map[key]int{}
	for _, d := range s.Decisions {
		if ctx.Err() != nil {
			break
		}
		v := engine.Evaluate(ctx, d.Request)
		if v.Allow == d.RuleAllowed {
			continue
		}
		k := key{d.RuleAllowed, d.Request.Method, d.Request.URL, d.Request.Proc.Comm, d.Request.Proc.Exe}
		i, ok := index[k]
		if !ok {
			i = len(res.Flips)
			index[k] = i
			res.Flips = append(res.Flips, Flip{WasAllowed: k.was, Method: k.method, URL: k.url, Comm: k.comm, Exe: k.exe, FirstLine: d.Line})
			if v.Reason != "rule" {
				res.Flips[i].Reason = v.Reason
			}
		}
		f := &res.Flips[i]
		f.Count++
		if pid := d.Request.Proc.PID; pid != 0 && !slices.Contains(f.PIDs, pid) {
			f.PIDs = append(f.PIDs, pid)
		}
	}
	for i := range res.Flips {
		slices.Sort(res.Flips[i].PIDs)
	}
	slices.SortStableFunc(res.Flips, func(a, b Flip) int {
		switch {
		case a.WasAllowed != b.WasAllowed:
			if a.WasAllowed {
				return -1
			}
			return 1
		case a.URL != b.URL:
			return strings.Compare(a.URL, b.URL)
		case a.Method != b.Method:
			return strings.Compare(a.Method, b.Method)
		case a.Exe != b.Exe:
			return strings.Compare(a.Exe, b.Exe)
		}
		return strings.Compare(a.Comm, b.Comm)
	})
	return res
}

// Write prints one line per flip, then a summary line.
func (r *Result) Write(w io.Writer) {
	for _, f := range r.Flips {
		fmt.Fprintln(w, f.line())
	}
	toDeny, toAllow := r.Changed()
	tail := ""
	if r.NotRuled > 0 {
		tail = fmt.Sprintf("; %d not decided by a rule (refused before it, or --dns fake), not compared", r.NotRuled)
	}
	if r.Compared == 0 {
		fmt.Fprintf(w, "no change: nothing to compare, no request or lookup a rule decided was recorded%s\n", tail)
		return
	}
	if toDeny+toAllow == 0 {
		fmt.Fprintf(w, "no change: the rule decides all %d recorded request(s) and lookup(s) as recorded%s\n", r.Compared, tail)
		return
	}
	fmt.Fprintf(w, "%d of %d decision(s) change: %d allowed → denied, %d denied → allowed%s\n",
		toDeny+toAllow, r.Compared, toDeny, toAllow, tail)
}

func (f Flip) line() string {
	dir := "was denied → now allowed"
	if f.WasAllowed {
		dir = "was allowed → now denied"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %d×  %s %s  by %s", dir, f.Count, clean(f.Method), clean(f.URL), processName(f.Comm, f.Exe))
	if len(f.PIDs) > 0 {
		b.WriteString(" pid")
		if len(f.PIDs) > 1 {
			b.WriteString("s")
		}
		for i, p := range f.PIDs {
			if i == 4 {
				fmt.Fprintf(&b, " +%d", len(f.PIDs)-4)
				break
			}
			b.WriteString(" " + strconv.FormatUint(uint64(p), 10))
		}
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, "  (%s)", clean(f.Reason))
	}
	return b.String()
}

// processName is "comm (exe)", either alone, or "unknown process".
func processName(comm, exe string) string {
	switch {
	case comm != "" && exe != "":
		return clean(comm) + " (" + clean(exe) + ")"
	case exe != "":
		return clean(exe)
	case comm != "":
		return clean(comm)
	}
	return "unknown process"
}

// clean replaces what a terminal or a reader could be fooled by (control
// characters, line and paragraph separators) in text from the jail.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			return '?'
		}
		return r
	}, s)
}

// Run compares engine with s, writes the result to w and returns replay's
// exit status: 0 if no decision changes, 1 if some do.
func Run(ctx context.Context, w io.Writer, engine rules.Engine, s *Session) int {
	res := Compare(ctx, engine, s)
	res.Write(w)
	if d, a := res.Changed(); d+a > 0 {
		return 1
	}
	return 0
}
