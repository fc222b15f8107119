package secrets

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestNewLocksValuesAndDisablesCoreDumps: once a real value is held the
// process dumps no core, and the values live in a locked mapping (or
// LockError says why not).
func TestNewLocksValuesAndDisablesCoreDumps(t *testing.T) {
	s := newTestSet(t, Spec{Name: "K", Hosts: []string{"h"}, Value: []byte(realGitHub)})
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || d != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d, %v; want 0", d, err)
	}
	if !s.mem.mapped {
		t.Errorf("the values are not in their own mapping")
	}
	if err := s.LockError(); err != nil {
		t.Logf("mlock failed (the values are kept anyway): %v", err)
	}
	if string(s.secrets[0].value) != realGitHub {
		t.Errorf("value not kept")
	}
}
