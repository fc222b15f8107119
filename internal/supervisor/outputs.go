package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Records are the options for where events go.
type Records struct {
	RequestLog string // a file to append httpjail's request log lines to
	JSON       string // a file to append JSON events to; "-" is Stdout
	Audit      bool   // the process tree at Finish
	Verbose    int    // the human log's detail: 0 denials, 1 every request
	// Quiet is for a terminal the command shares (QuietTerminal): the
	// human log only counts what it would tell, and Finish says the
	// counts in one line.
	Quiet bool
	// Stdout and Stderr are ebpfjail's; the human log and the audit
	// table go to Stderr.
	Stdout, Stderr io.Writer
	Warn           func(msg string) // a warning for the user; required
}

// Outputs are where events go: the human log, the request log, the JSON
// log and the audit's tally.
type Outputs struct {
	sink   report.Sink
	audit  *report.Audit
	tally  *report.Tally // the human log, when quiet
	see    string        // where the tally's line says to look
	json   *report.JSON
	reqLog *report.RequestLog
	files  []io.Closer
	start  time.Time
	stderr io.Writer
	warn   func(string)
}

// OpenOutputs opens the files r names. A file that cannot be opened stops
// ebpfjail before anything runs: the error is an *Error of StepRequestLog
// or StepJSONLog.
func OpenOutputs(r Records) (*Outputs, error) {
	out := &Outputs{start: time.Now(), stderr: r.Stderr, warn: r.Warn}
	var sinks []report.Sink
	if r.Quiet {
		out.tally, out.see = report.NewTally(), report.SeeHint(r.JSON)
		sinks = append(sinks, out.tally)
	} else {
		sinks = append(sinks, report.NewHuman(r.Stderr, r.Verbose))
	}
	if r.RequestLog != "" {
		f, err := os.OpenFile(r.RequestLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, &Error{Step: StepRequestLog, Err: fmt.Errorf("open request log: %w", err)}
		}
		out.files = append(out.files, f)
		out.reqLog = report.NewRequestLog(f)
		out.reqLog.OnError(out.warnLogError("request log", r.RequestLog))
		sinks = append(sinks, out.reqLog)
	}
	if r.JSON != "" {
		w := r.Stdout
		if r.JSON != "-" {
			f, err := os.OpenFile(r.JSON, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				out.Close()
				return nil, &Error{Step: StepJSONLog, Err: fmt.Errorf("open JSON log: %w", err)}
			}
			out.files = append(out.files, f)
			w = f
		}
		out.json = report.NewJSON(w)
		out.json.OnError(out.warnLogError("JSON log", r.JSON))
		sinks = append(sinks, out.json)
	}
	if r.Audit {
		out.audit = report.NewAudit()
		sinks = append(sinks, out.audit)
	}
	out.sink = report.Fanout(sinks...)
	return out, nil
}

// Emit sends e to every output.
func (out *Outputs) Emit(e event.Event) { out.sink.Emit(e) }

// warnLogError is a log's first write error: said once, when it happens
// (a full disk would otherwise fail silently until exit, or flood stderr
// with a line per request). Decisions do not depend on the logs.
func (out *Outputs) warnLogError(what, name string) func(error) {
	return func(err error) {
		out.warn(fmt.Sprintf("cannot write the %s (%s): %v; requests are still decided, but lines are lost until it can be written", what, name, err))
	}
}

// Finish prints the audit's table and, when quiet, the line of counts,
// writes the summary event and closes the outputs.
func (out *Outputs) Finish(status int) {
	if out.audit != nil {
		s := out.audit.Summary(status, time.Since(out.start))
		out.audit.WriteTable(out.stderr, s)
		if out.json != nil {
			out.json.Emit(event.Event{V: event.Version, Type: event.TypeSummary, Time: time.Now().UTC(), Summary: &s})
		}
	}
	if out.tally != nil {
		io.WriteString(out.stderr, out.tally.Counts().Line(out.see))
	}
	out.Close()
}

// Close closes the files, saying if a record is incomplete.
func (out *Outputs) Close() {
	// A record that could not be written is worth a word: the user relies on it.
	if out.reqLog != nil && out.reqLog.Err() != nil {
		out.warn(fmt.Sprintf("the request log is incomplete: %d line(s) lost, the first: %v", out.reqLog.Lost(), out.reqLog.Err()))
	}
	if out.json != nil && out.json.Err() != nil {
		out.warn(fmt.Sprintf("the JSON log is incomplete: %d line(s) lost, the first: %v", out.json.Lost(), out.json.Err()))
	}
	for _, f := range out.files {
		f.Close()
	}
	out.files = nil
}

// Audit is the engine of an audit: it allows every request, asking rule
// (if not nil) for the record. Closing it closes rule.
func Audit(rule rules.Engine) rules.Engine { return auditEngine{rule} }

// auditEngine lets every request through (--audit) while still asking the
// rule, if there is one, so the record shows what it would have decided.
type auditEngine struct{ rule rules.Engine }

func (a auditEngine) Evaluate(ctx context.Context, r *rules.Request) rules.Verdict {
	if a.rule == nil {
		return rules.Verdict{Allow: true, Reason: "audit"}
	}
	v := a.rule.Evaluate(ctx, r)
	if v.Allow {
		return rules.Verdict{Allow: true, Reason: "audit: the rule allows"}
	}
	return rules.Verdict{Allow: true, Reason: "audit: the rule would deny (" + v.Reason + ")", DenyMessage: v.DenyMessage}
}

func (a auditEngine) Close() error {
	if a.rule == nil {
		return nil
	}
	return a.rule.Close()
}
