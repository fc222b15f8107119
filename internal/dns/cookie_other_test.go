//go:build !linux

package dns

import (
	"syscall"
	"testing"
)

// socketCookie skips the test: only Linux has socket cookies.
func socketCookie(t *testing.T, _ syscall.Conn) uint64 {
	t.Skip("socket cookies need Linux")
	return 0
}
