//go:build linux

package bpf

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestGuardLoadErrorNamesTheCauseNotMemlock(t *testing.T) {
	eperm := fmt.Errorf("program probe: load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	got := guardLoadError(eperm).Error()
	if os.Geteuid() == 0 {
		want := "this kernel refuses BPF LSM programs: loading one as root failed with EPERM, the kernel refusing programs attached through BPF trampolines (fentry too)"
		if got != want {
			t.Errorf("EPERM as root: got %q, want %q", got, want)
		}
	}
	if strings.Contains(got, "MEMLOCK") && os.Geteuid() == 0 {
		t.Errorf("EPERM as root: got %q, want no MEMLOCK advice", got)
	}
	got = guardLoadError(fmt.Errorf("find target: %w", unix.ENOENT)).Error()
	if !strings.HasPrefix(got, "this kernel has no BPF LSM hooks (CONFIG_BPF_LSM)") {
		t.Errorf("ENOENT: got %q, want the missing hooks named", got)
	}
}
