//go:build !linux

package control

import (
	"errors"
	"os"
)

// isTerminal: watch needs a jail, and jails need Linux; no colour here.
func isTerminal(*os.File) bool { return false }

func cbreak(*os.File) (func(), error) { return nil, errors.New("no terminal control here") }
