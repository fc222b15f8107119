package testutil

import (
	"os"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
)

// RequireRoot skips the test unless it runs as root, so privileged tests
// skip cleanly for developers running go test as themselves.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root")
	}
}

// Cgroup2Mount returns where the cgroup2 hierarchy is mounted: /sys/fs/cgroup
// on unified systems, /sys/fs/cgroup/unified on hybrid ones. It skips the
// test if there is no cgroup2 mount.
func Cgroup2Mount(tb testing.TB) string {
	tb.Helper()
	mnt, err := mounts.Cgroup2()
	if err != nil {
		tb.Fatalf("find cgroup2 mount: %v", err)
	}
	if mnt == "" {
		tb.Skip("skipping: no cgroup2 mount")
	}
	return mnt
}
