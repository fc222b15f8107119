package report

import (
	"strings"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// ANSI colours of a watch line's first word: what ebpfjail did.
const (
	colorAllow = "\x1b[32m"
	colorDeny  = "\x1b[31m"
	colorReset = "\x1b[0m"
)

// WatchLine is e as `ebpfjail watch` shows it: the human log's line at
// full detail (-vv), without its prefix, with the hint every time (a
// watcher joins at any moment). With color, the first word is green for
// an allow and red for a deny.
//
//	denied GET https://x.test/ (curl pid 123): rule
//	dns A x.test 198.18.0.7 (curl pid 1)
func WatchLine(e event.Event, color bool) string {
	h := Human{verbose: 2}
	line, _ := h.format(e)
	if line == "" {
		line = join(clean(e.Type), "event", procLabel(e))
	}
	if e.Type == event.TypeRequest && e.Verdict == event.Allow && e.Reason != "" && e.Reason != "rule" && !strings.Contains(line, e.Reason) {
		// Who let it through, when not the rule (a person, under --ask).
		line += ": " + clean(e.Reason)
	}
	if e.Hint != "" {
		line += "; hint: " + clean(e.Hint)
	}
	if !color {
		return line
	}
	c := ""
	switch e.Verdict {
	case event.Allow:
		c = colorAllow
	case event.Deny:
		c = colorDeny
	default:
		return line
	}
	word, rest, _ := strings.Cut(line, " ")
	if rest != "" {
		rest = " " + rest
	}
	return c + word + colorReset + rest
}
