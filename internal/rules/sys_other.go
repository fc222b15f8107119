//go:build !linux

package rules

import (
	"errors"
	"os"
	"syscall"
)

// sealable: no memfd to seal here, so nothing is pinned (pin.go).
const sealable = false

func sealedCopy(string) (*os.File, error) {
	return nil, errors.New("sealed copies need Linux")
}

// childAttr puts a rule process in its own process group (so a timeout can
// kill everything it started). Only Linux can have the kernel kill it when
// ebpfjail dies.
func childAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
