package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/ebpfjail/ebpfjail/internal/container"
)

// parseDockerRun reads --docker-run's arguments (o.command) and refuses
// the options that cannot be jailed, each with its hint.
func parseDockerRun(o *options, fs *pflag.FlagSet) error {
	if on, _ := fs.GetBool("docker-run"); !on {
		if o.engine != "" {
			return errors.New("--engine needs --docker-run")
		}
		return nil
	}
	if o.server || o.weak || o.cleanup || o.testSet || o.user != "" {
		return errors.New("--docker-run does not go with --server, --weak, --cleanup, --test or --user (docker run's --user goes after --)")
	}
	if o.engine != "" && o.engine != "docker" && o.engine != "podman" {
		return fail(exitUsage, errors.New("--engine takes docker or podman"), "as in: ebpfjail --engine podman --docker-run -- --rm IMAGE")
	}
	a, err := container.Parse(o.command)
	var r *container.Refusal
	if errors.As(err, &r) {
		return fail(exitUsage, r, r.Hint)
	} else if err != nil {
		return err
	}
	o.dockerRun = a
	return nil
}
