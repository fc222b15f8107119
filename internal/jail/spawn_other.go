//go:build !linux

package jail

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// StartUnjailed starts cmd as this process's user when c.User is nil
// (ebpfjail --weak). Only this exists here: a jail needs Linux.
func StartUnjailed(c Command) (*os.Process, error) {
	cmd, err := newCmd(c)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, classifyStartErr(c.Args[0], err)
	}
	return cmd.Process, nil
}

// CloseInheritedFDs marks every descriptor above 2 close-on-exec, so the
// command inherits nothing ebpfjail was started with. There is no
// close_range here: each number the descriptor limit allows is marked.
func CloseInheritedFDs() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	n := min(uint64(lim.Cur), maxFDs) // int64 on some systems
	for fd := 3; uint64(fd) < n; fd++ {
		unix.CloseOnExec(fd)
	}
	return nil
}

// maxFDs bounds the loop when the limit is unlimited.
const maxFDs = 1 << 20
