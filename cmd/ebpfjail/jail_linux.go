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
	// Before anything is opened, and while the rule compiles and the CA
	// loads, the supervisor prepares the jail.
	sup, err := supervisor.Begin()
	if err != nil {
		return 0, err
	}
	defer sup.Close()
	user, err := jail.ResolveUser(o.user, os.Getenv, os.Getuid())
	if err != nil {
		if errors.Is(err, jail.ErrRootChild) {
			return 0, fail(exitFailure, errors.New("refusing to run the command as root: a root process can leave the jail"),
				"run ebpfjail through sudo from your own account, or pick a user with --user USER",
				"--user root runs it as root anyway")
		}
		return 0, fail(exitFailure, err, "--user takes a user name or a numeric uid")
	}
	if user.UID == 0 {
		warnf(os.Stderr, "the command runs as root and can leave the jail (--user root)")
	}
	engine, err := buildEngine(o, log, user)
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	out, err := openOutputs(o)
	if err != nil {
		return 0, err
	}
	ca, trustEnv, removeTrust, err := trust(log)
	if err != nil {
		return 0, err
	}
	defer removeTrust()
	c := config(o, engine, ca, out)
	c.Env, c.User, c.Done = supervisor.WithEnv(c.Env, trustEnv), user, out.Finish
	status, err := sup.Run(c, log)
	if err != nil {
		out.Close()
		return 0, jailError(o, err, user.Name)
	}
	return status, nil
}

// jailError gives a supervisor's failure its exit status and hints.
func jailError(o *options, err error, user string) error {
	var se *supervisor.Error
	if !errors.As(err, &se) {
		return err
	}
	check := "run 'ebpfjail check' to see what this host lacks"
	switch se.Step {
	case supervisor.StepPaths:
		return pathsError(se.Err)
	case supervisor.StepLoad:
		var ve *ebpf.VerifierError
		if errors.As(se.Err, &ve) && o.verbose >= 2 {
			fmt.Fprintf(os.Stderr, "%+v\n", ve)
		}
		hints := []string{"run 'ebpfjail check' to see what this kernel lacks"}
		if errors.As(se.Err, &ve) && o.verbose < 2 {
			hints = append(hints, "-vv prints the verifier log")
		}
		return fail(exitFailure, se.Err, hints...)
	case supervisor.StepDenyUnix:
		return fail(exitUsage, se.Err, "--deny-unix takes an absolute path or @name")
	case supervisor.StepJail:
		return fail(exitFailure, se.Err, check)
	case supervisor.StepAttach:
		return fail(exitFailure, se.Err, "run 'ebpfjail check' to see which program this kernel cannot attach")
	case supervisor.StepUnixHooks:
		return fail(exitFailure, se.Err, "they come with Linux 6.7; without them ebpfjail can open no single abstract socket, only refuse them all (leave out --allow-unix @NAME)")
	case supervisor.StepAllowUnix:
		return fail(exitUsage, se.Err, "--allow-unix takes an absolute path or @name")
	case supervisor.StepStart:
		return startError(o, se.Err, user)
	}
	return fail(exitFailure, se.Err)
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
