package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cilium/ebpf"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// needRoot refuses to go on without root; example is the command line to
// show with sudo.
func needRoot(what, example string) error {
	if os.Geteuid() != 0 {
		return fail(exitFailure, fmt.Errorf("%s needs root", what),
			"run it with sudo, as in: sudo "+example)
	}
	return nil
}

func jailPaths() (jail.Paths, error) {
	p, err := jail.DefaultPaths()
	if err != nil {
		return p, pathsError(err)
	}
	return p, nil
}

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
	status, err := supervisor.Jail(supervised(o), o.user, log)
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
	paths, err := jailPaths()
	if err != nil {
		return 0, err
	}
	swept, err := jail.Sweep(paths, log)
	for _, s := range swept {
		fmt.Fprintf(w, "removed jail %s (%d process(es) killed)\n", s.ID, s.Procs)
	}
	if err != nil {
		return 0, fail(exitFailure, err, "run 'ebpfjail --cleanup' again; a jail that cannot be removed stays refused")
	}
	if len(swept) == 0 {
		fmt.Fprintln(w, "no jails to clean up")
	}
	return 0, nil
}
