package control

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Printer is the Watcher of `ebpfjail watch`: events on Out, one line
// each (human, or JSON as --log-json writes them), and notes about jails
// on Notes.
type Printer struct {
	Out, Notes io.Writer
	JSON       bool // the events as --log-json lines
	Color      bool // colour the human lines' verdicts
	json       *report.JSON
	keys       *asking // an interactive watch: held requests answered by key
}

// Attached says which jail the watcher follows from now on.
func (p *Printer) Attached(s Status) {
	pid := ""
	if s.PID != 0 {
		pid = ", pid " + strconv.Itoa(s.PID)
	}
	fmt.Fprintf(p.Notes, "ebpfjail: watching jail %s: %s (user %s%s)\n", s.ID, commandLine(s.Command), s.User, pid)
}

// Event prints e.
func (p *Printer) Event(id string, e event.Event) {
	if p.JSON {
		if p.json == nil {
			p.json = report.NewJSON(p.Out)
		}
		p.json.Emit(e)
		return
	}
	at := e.Time.Local().Format("15:04:05.000")
	fmt.Fprintf(p.Out, "%s %s %s\n", at, id, report.WatchLine(e, p.Color))
}

// Pending shows a held request and how to answer it.
func (p *Printer) Pending(id string, h Pending) {
	what := report.WatchLine(event.Event{Type: event.TypeRequest, Verdict: "ask", Method: h.Method, URL: h.URL, PID: h.PID, Comm: h.Comm}, false)
	what = strings.Replace(what, "denied ", "", 1)
	w := p.Out
	if p.JSON {
		w = p.Notes
	}
	how := "sudo ebpfjail answer " + h.ID + " allow|always|deny"
	if p.keys != nil {
		p.keys.add(id, h.ID)
		how = KeyHelp
	}
	fmt.Fprintf(w, "%s %s ASK %s %s: %s (denied at %s)\n",
		time.Now().Format("15:04:05.000"), id, h.ID, what, how, h.Expires.Local().Format("15:04:05"))
}

// Dropped says how many events this watcher missed.
func (p *Printer) Dropped(id string, n int64) {
	fmt.Fprintf(p.Notes, "ebpfjail: jail %s: %d events dropped (this watcher read too slowly)\n", id, n)
}

// Ended says the jail is gone.
func (p *Printer) Ended(id string, end *End) {
	switch {
	case end == nil:
		fmt.Fprintf(p.Notes, "ebpfjail: lost jail %s\n", id)
	case end.ExitStatus == nil:
		fmt.Fprintf(p.Notes, "ebpfjail: jail %s ended before its command started\n", id)
	default:
		fmt.Fprintf(p.Notes, "ebpfjail: jail %s ended: exit status %d, %s\n", id, *end.ExitStatus, countsLine(end.Status.Counts))
	}
}

// Idle says there is nothing to watch yet.
func (p *Printer) Idle() { fmt.Fprintln(p.Notes, "ebpfjail: no jail running; waiting…") }

// countsLine is a jail's counts for a person.
func countsLine(c Counts) string {
	return fmt.Sprintf("%d allowed, %d denied, %d refused, %d DNS lookups", c.Allowed, c.Denied, c.Refused, c.DNS)
}

// WriteTable writes `ebpfjail ps`: one row per jail.
func WriteTable(w io.Writer, jails []Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tUSER\tSTARTED\tALLOWED\tDENIED\tREFUSED\tCOMMAND")
	for _, s := range jails {
		pid := "-"
		if s.PID != 0 {
			pid = strconv.Itoa(s.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.ID, pid, s.User, started(s.Started, now),
			s.Counts.Allowed, s.Counts.Denied, s.Counts.Refused, commandLine(s.Command))
	}
	tw.Flush()
}

// started is a start time for a table: the clock time, with how long ago.
func started(t, now time.Time) string {
	ago := now.Sub(t).Round(time.Second)
	return t.Local().Format("15:04:05") + " (" + ago.String() + " ago)"
}

// commandLine is a command for a line: its words, cut short, with
// control characters made harmless (a jail's command comes from its user).
func commandLine(argv []string) string {
	s := strings.Join(argv, " ")
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		b.WriteRune(r)
	}
	s = b.String()
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "..."
	}
	return s
}
