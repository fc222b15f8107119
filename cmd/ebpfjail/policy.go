package main

import (
	"log/slog"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
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
