package main

import (
	"errors"
	"io"
	"log/slog"

	"github.com/ebpfjail/ebpfjail/internal/attack"
	"github.com/ebpfjail/ebpfjail/internal/jail"
)

// runAttack is `ebpfjail check --attack`: it jails a copy of itself, which
// tries every escape in internal/attack, and reports each attempt with
// what the canaries saw. Exit 1 if anything got out, or if the controls
// did not get through (then the run proves nothing).
func runAttack(w io.Writer, o *options, log *slog.Logger) (int, error) {
	if err := needRoot("check --attack", "ebpfjail check --attack"); err != nil {
		return 0, err
	}
	paths, err := jail.DefaultPaths()
	if err != nil {
		return 0, pathsError(err)
	}
	d := attack.Drive{User: o.user, StateDir: paths.State, BPFFS: paths.BPFFS, Verbose: o.verbose > 0, Log: log}
	if len(o.targets) > 0 {
		d.V4, d.V6, _ = attack.Targets(o.targets) // checked by parseArgs
	}
	status, err := d.Run(w)
	var he *attack.HintError
	if errors.As(err, &he) {
		return 0, fail(exitFailure, he.Err, he.Hint)
	}
	return status, err
}
