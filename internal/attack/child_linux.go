package attack

import (
	"fmt"
	"io"
	"strings"
)

// The exit statuses of the hidden commands: ebpfjail's own.
const (
	exitUsage   = 2
	exitFailure = 125
)

// IsChild reports whether args (without the program name) are one of the
// hidden commands ebpfjail runs as, inside and around an attack jail.
func IsChild(args []string) bool {
	return len(args) > 0 && strings.HasPrefix(args[0], "__attack")
}

// Child runs the hidden command args and returns its exit status.
func Child(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	failed := func(status int, err error) int {
		fmt.Fprintf(stderr, "ebpfjail: error: %v\n", err)
		return status
	}
	switch {
	case args[0] == RunArg && len(args) == 2:
		spec, err := DecodeSpec(args[1])
		if err != nil {
			return failed(exitUsage, err)
		}
		Run(spec, stdout)
		return 0
	case args[0] == OnlyArg && len(args) == 3:
		spec, err := DecodeSpec(args[2])
		if err != nil {
			return failed(exitUsage, err)
		}
		RunOnly(strings.Split(args[1], ","), spec, stdout)
		return 0
	case args[0] == HostsArg && len(args) >= 3:
		return failed(exitFailure, ExecWithHosts(args[1], args[2:]))
	case args[0] == StepArg && len(args) == 3:
		spec, err := DecodeSpec(args[2])
		if err != nil {
			return failed(exitUsage, err)
		}
		RunStep(args[1], spec, stdout)
		return 0
	case args[0] == VictimArg && len(args) == 2:
		spec, err := DecodeSpec(args[1])
		if err == nil {
			err = RunVictim(spec, stdout)
		}
		if err != nil {
			return failed(exitFailure, err)
		}
		return 0
	case args[0] == RuleArg && len(args) == 2:
		if err := RunRule(RuleFor(Spec{BlockedExe: args[1]}), stdin, stdout); err != nil {
			return failed(exitFailure, err)
		}
		return 0
	}
	return failed(exitUsage, fmt.Errorf("unknown internal command %q", args[0]))
}
