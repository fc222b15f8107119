package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfjail/ebpfjail/internal/attack"
	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// pathsError is a failure to find or mount cgroup2 and bpffs.
func pathsError(err error) error {
	if errors.Is(err, jail.ErrNoCgroup2) {
		return fail(exitFailure, err, "mount it (mount -t cgroup2 none /sys/fs/cgroup) or run 'ebpfjail check'")
	}
	return fail(exitFailure, err, "run 'ebpfjail check' to see what this host lacks")
}

// runJail runs o.command in a new jail and returns its exit status.
func runJail(o *options, log *slog.Logger) (int, error) {
	if err := needRoot("jailing a command", "ebpfjail -- curl https://example.com"); err != nil {
		return 0, err
	}
	if err := loadSecrets(o); err != nil {
		return 0, err
	}
	defer o.secretSet.Close()
	so := supervised(o)
	if o.dockerRun != nil {
		e, _, err := container.Reachable(o.engine, 10*time.Second)
		if err != nil {
			return 0, fail(exitFailure, err, "start the engine, or point its client at it (DOCKER_HOST, 'docker context use'); 'ebpfjail check' says which engine it reaches")
		}
		so.Docker, so.Engine, so.Command = o.dockerRun, e, []string{e.Name}
	}
	status, err := supervisor.Jail(so, o.user, log)
	return status, runError(o, err, tlsca.DefaultDir+" (root only)")
}

// loadError is a failure to load the BPF object; -vv prints the
// verifier's log.
func loadError(o *options, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) && o.verbose >= 2 {
		fmt.Fprintf(os.Stderr, "%+v\n", ve)
	}
	hints := []string{"run 'ebpfjail check' to see what this kernel lacks"}
	if errors.As(err, &ve) && o.verbose < 2 {
		hints = append(hints, "-vv prints the verifier log")
	}
	return fail(exitFailure, err, hints...)
}

// runCleanup removes jails whose supervisor died.
func runCleanup(w io.Writer, log *slog.Logger) (int, error) {
	if err := needRoot("--cleanup", "ebpfjail --cleanup"); err != nil {
		return 0, err
	}
	err := supervisor.Cleanup(w, log)
	var se *supervisor.Error
	if errors.As(err, &se) && se.Step == supervisor.StepPaths {
		return 0, pathsError(se.Err)
	} else if err != nil {
		return 0, fail(exitFailure, err, "run 'ebpfjail --cleanup' again; a jail that cannot be removed stays refused")
	}
	return 0, nil
}

// runCheck is `ebpfjail check`.
func runCheck(w io.Writer) (int, error) { return supervisor.Check(w, os.Stderr), nil }

// hiddenCommand runs the commands ebpfjail runs itself as for check
// --attack, if args are one.
func hiddenCommand(args []string) (int, bool) {
	if !attack.IsChild(args) {
		return 0, false
	}
	return attack.Child(args, os.Stdin, os.Stdout, os.Stderr), true
}
