package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// buildEngine compiles or starts the rule before anything else happens, so
// a bad rule stops ebpfjail before the command could run.
func buildEngine(o *options, log *slog.Logger, user *jail.User) (rules.Engine, error) {
	e, err := supervisor.Rule{
		JS: o.js, JSFile: o.jsFile, Sh: o.sh, Proc: o.proc, JSTimeout: o.jsTimeout, Reload: o.server, Audit: o.audit,
	}.Engine(user, log)
	if err != nil {
		return nil, fail(exitFailure, err, "fix the rule; 'ebpfjail --js RULE --test URL' tries one without a jail")
	}
	return e, nil
}

// openOutputs opens the records the options name.
func openOutputs(o *options) (*supervisor.Outputs, error) {
	out, err := supervisor.OpenOutputs(supervisor.Records{
		RequestLog: o.requestLog, JSON: o.logJSON, Audit: o.audit, Verbose: o.verbose,
		Stdout: os.Stdout, Stderr: os.Stderr, Warn: warn,
	})
	var se *supervisor.Error
	switch {
	case errors.As(err, &se) && se.Step == supervisor.StepRequestLog:
		return nil, fail(exitFailure, se.Err, "--request-log takes a file ebpfjail can append to")
	case errors.As(err, &se) && se.Step == supervisor.StepJSONLog:
		return nil, fail(exitFailure, se.Err, "--log-json takes a file ebpfjail can append to, or - for standard output")
	}
	return out, err
}

// trust loads (or makes) the CA and writes the bundle the command reads;
// it returns the CA, the variables to set, and a function removing the
// bundle.
func trust(log *slog.Logger) (*tlsca.CA, []string, func(), error) {
	ca, err := supervisor.LoadCA(tlsca.DefaultDir, log)
	if err != nil {
		return nil, nil, nil, fail(exitFailure, err, "ebpfjail keeps its CA in "+tlsca.DefaultDir+" (root only)")
	}
	env, remove, err := supervisor.TrustFiles(ca, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, env, remove, nil
}
