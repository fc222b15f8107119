package mounts

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Table is the kernel's mount table of the calling process.
const Table = "/proc/mounts"

// Find returns the mount point of the first filesystem of type fstype in
// the mount table, or "" when there is none.
func Find(fstype string) (string, error) {
	f, err := os.Open(Table)
	if err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	return Of(f, fstype)
}

// All returns the mount points of every filesystem of type fstype in the
// mount table (the cgroup v1 hierarchies of a hybrid system, say).
func All(fstype string) ([]string, error) {
	f, err := os.Open(Table)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[2] == fstype {
			out = append(out, Unescape(f[1]))
		}
	}
	return out, sc.Err()
}

// Cgroup2 returns where the cgroup2 hierarchy is mounted (/sys/fs/cgroup on
// unified systems, /sys/fs/cgroup/unified on hybrid ones), or "".
func Cgroup2() (string, error) { return Find("cgroup2") }

// Of returns the mount point of the first filesystem of type fstype listed
// in the mounts table r (/proc/mounts format), or "".
func Of(r io.Reader, fstype string) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// device mountpoint fstype options dump pass
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == fstype {
			return Unescape(f[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	return "", nil
}

// Unescape undoes the octal escapes (\040 for space and so on) the kernel
// uses for whitespace and backslashes in /proc/mounts and mountinfo.
func Unescape(s string) string {
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
