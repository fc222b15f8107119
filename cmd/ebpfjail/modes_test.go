package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
)

// A supervisor's failure keeps the status and message it had when cmd
// started the jail itself.
func TestRunErrorGivesEachStepItsStatus(t *testing.T) {
	o := &options{command: []string{"tool"}}
	for _, tc := range []struct {
		err  *supervisor.Error
		code int
		msg  string
	}{
		{&supervisor.Error{Step: supervisor.StepUser, Err: jail.ErrRootChild}, exitFailure, "refusing to run the command as root: a root process can leave the jail"},
		{&supervisor.Error{Step: supervisor.StepRule, Err: errors.New("bad rule")}, exitFailure, "bad rule"},
		{&supervisor.Error{Step: supervisor.StepDenyUnix, Err: errors.New("bad path")}, exitUsage, "bad path"},
		{&supervisor.Error{Step: supervisor.StepAllowUnix, Err: errors.New("bad name")}, exitUsage, "bad name"},
		{&supervisor.Error{Step: supervisor.StepStart, Err: fmt.Errorf("start tool: %w", jail.ErrNotFound)}, exitNotFound, "command not found: tool"},
		{&supervisor.Error{Step: supervisor.StepStart, Err: fmt.Errorf("start tool: %w", jail.ErrNotExecutable), User: "alice"}, exitNotExecutable, "command not executable: tool"},
	} {
		var e *exitError
		if err := runError(o, tc.err, "/ca"); !errors.As(err, &e) || e.code != tc.code || e.err.Error() != tc.msg || len(e.hints) == 0 {
			t.Errorf("step %d: got %v (%+v), want status %d, %q and a hint", tc.err.Step, err, e, tc.code, tc.msg)
		}
	}
	if err := runError(o, nil, "/ca"); err != nil {
		t.Errorf("no error: got %v", err)
	}
}
