package main

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

// outputs are where events go: the human log on stderr, --request-log,
// --log-json and --audit's tally.
type outputs struct {
	sink   report.Sink
	audit  *report.Audit
	json   *report.JSON
	reqLog *report.RequestLog
	files  []io.Closer
	start  time.Time
	stderr io.Writer
}

// openOutputs opens the files the options name. A file that cannot be
// opened stops ebpfjail before anything runs.
func openOutputs(o *options) (*outputs, error) {
	out := &outputs{start: time.Now(), stderr: os.Stderr}
	sinks := []report.Sink{report.NewHuman(os.Stderr, o.verbose)}
	if o.requestLog != "" {
		f, err := os.OpenFile(o.requestLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fail(exitFailure, fmt.Errorf("open request log: %w", err), "--request-log takes a file ebpfjail can append to")
		}
		out.files = append(out.files, f)
		out.reqLog = report.NewRequestLog(f)
		out.reqLog.OnError(out.warnLogError("request log", o.requestLog))
		sinks = append(sinks, out.reqLog)
	}
	if o.logJSON != "" {
		var w io.Writer = os.Stdout
		if o.logJSON != "-" {
			f, err := os.OpenFile(o.logJSON, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				out.close()
				return nil, fail(exitFailure, fmt.Errorf("open JSON log: %w", err), "--log-json takes a file ebpfjail can append to, or - for standard output")
			}
			out.files = append(out.files, f)
			w = f
		}
		out.json = report.NewJSON(w)
		out.json.OnError(out.warnLogError("JSON log", o.logJSON))
		sinks = append(sinks, out.json)
	}
	if o.audit {
		out.audit = report.NewAudit()
		sinks = append(sinks, out.audit)
	}
	out.sink = report.Fanout(sinks...)
	return out, nil
}

func (out *outputs) emit(e event.Event) { out.sink.Emit(e) }

// warnLogError is a log's first write error: said once, when it happens
// (a full disk would otherwise fail silently until exit, or flood stderr
// with a line per request). Decisions do not depend on the logs.
func (out *outputs) warnLogError(what, name string) func(error) {
	return func(err error) {
		warnf(out.stderr, "cannot write the %s (%s): %v; requests are still decided, but lines are lost until it can be written", what, name, err)
	}
}

// finish prints --audit's table and writes the summary event.
func (out *outputs) finish(status int) {
	if out.audit != nil {
		s := out.audit.Summary(status, time.Since(out.start))
		out.audit.WriteTable(out.stderr, s)
		if out.json != nil {
			out.json.Emit(event.Event{V: event.Version, Type: event.TypeSummary, Time: time.Now().UTC(), Summary: &s})
		}
	}
	out.close()
}

func (out *outputs) close() {
	// A record that could not be written is worth a word: the user relies on it.
	if out.reqLog != nil && out.reqLog.Err() != nil {
		warnf(out.stderr, "the request log is incomplete: %d line(s) lost, the first: %v", out.reqLog.Lost(), out.reqLog.Err())
	}
	if out.json != nil && out.json.Err() != nil {
		warnf(out.stderr, "the JSON log is incomplete: %d line(s) lost, the first: %v", out.json.Lost(), out.json.Err())
	}
	for _, f := range out.files {
		f.Close()
	}
	out.files = nil
}

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
	return rules.Verdict{Allow: true, Reason: "audit: the rule would deny (" + v.Reason + ")"}
}

func (a auditEngine) Close() error {
	if a.rule == nil {
		return nil
	}
	return a.rule.Close()
}
