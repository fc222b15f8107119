package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/ebpfjail/ebpfjail/internal/report"
)

// reportArgs are the arguments of `ebpfjail report EVENTS.jsonl -o FILE`.
type reportArgs struct {
	events, out string
}

func parseReport(o *options, args []string) error {
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.report = &reportArgs{}
	fs.StringVarP(&o.report.out, "output", "o", "", "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if fs.NArg() != 1 {
		return errors.New("report wants one events file (what --log-json wrote) and -o FILE.html")
	}
	o.report.events = fs.Arg(0)
	return nil
}

// runReport writes the HTML page of a recorded session to -o (or stdout).
func runReport(w io.Writer, a *reportArgs) (int, error) {
	s, err := report.ReadSession(a.events)
	if ie := (*report.InputError)(nil); errors.As(err, &ie) {
		return 0, fail(exitUsage, ie.Err, ie.Hint)
	}
	if err != nil {
		return 0, err
	}
	var b bytes.Buffer
	if err := report.WriteHTML(&b, s); err != nil {
		return 0, err
	}
	if a.out == "" || a.out == "-" {
		_, err = w.Write(b.Bytes())
		return 0, err
	}
	if err := os.WriteFile(a.out, b.Bytes(), 0o644); err != nil {
		return 0, fail(exitFailure, fmt.Errorf("write report: %w", err))
	}
	return 0, nil
}
