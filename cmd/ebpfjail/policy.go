package main

import (
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// buildEngine compiles or starts the rule before anything else happens, so
// a bad rule stops ebpfjail before the command could run.
func buildEngine(o *options, log *slog.Logger, user *jail.User) (rules.Engine, error) {
	log = log.With("component", "rule")
	// --sh and --proc run outside the jail as the invoking user, never as
	// root on the command's behalf.
	cred := &syscall.Credential{Uid: user.UID, Gid: user.GID, Groups: user.Groups}
	var e rules.Engine
	var err error
	switch {
	case o.js != "":
		e, err = rules.NewJS(o.js, "--js", rules.JSOptions{Timeout: o.jsTimeout, Logger: log})
	case o.jsFile != "":
		// Read once with a command: the jailed command must not be able to
		// rewrite its own policy. A --server proxy reloads it on change.
		e, err = rules.NewJSFile(o.jsFile, rules.JSOptions{Timeout: o.jsTimeout, Logger: log}, o.server)
	case o.sh != "":
		e, err = rules.NewShell(o.sh, rules.ShellOptions{Logger: log, Credential: cred, Env: os.Environ()})
	case o.proc != "":
		e, err = rules.NewLineProcess(o.proc, rules.ProcOptions{Logger: log, Credential: cred, Env: os.Environ()})
	default:
		e = rules.DenyAll()
		if o.audit {
			// --audit alone: allow and record everything.
			return supervisor.Audit(nil), nil
		}
	}
	if err != nil {
		return nil, fail(exitFailure, err, "fix the rule; 'ebpfjail --js RULE --test URL' tries one without a jail")
	}
	if o.audit {
		return supervisor.Audit(e), nil
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
	ca, err := tlsca.LoadOrCreate(tlsca.DefaultDir)
	if err != nil {
		return nil, nil, nil, fail(exitFailure, err, "ebpfjail keeps its CA in "+tlsca.DefaultDir+" (root only)")
	}
	if note := unrestrictedCA(ca, tlsca.DefaultDir); note != "" {
		log.Info(note)
	}
	env, remove, err := supervisor.TrustFiles(ca, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, env, remove, nil
}
