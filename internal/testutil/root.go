package testutil

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
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
	mnt, err := findCgroup2("/proc/mounts")
	if err != nil {
		tb.Fatalf("find cgroup2 mount: %v", err)
	}
	if mnt == "" {
		tb.Skip("skipping: no cgroup2 mount")
	}
	return mnt
}

func findCgroup2(mounts string) (string, error) {
	f, err := os.Open(mounts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// device mountpoint fstype options dump pass
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return unescapeMount(fields[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", mounts, err)
	}
	return "", nil
}

// unescapeMount undoes the octal escapes (\040 for space and so on) the
// kernel uses for whitespace and backslashes in /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
