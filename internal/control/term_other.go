//go:build !linux

package control

import "os"

// isTerminal: watch needs a jail, and jails need Linux; no colour here.
func isTerminal(*os.File) bool { return false }
