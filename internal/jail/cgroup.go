//go:build linux

package jail

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
)

// RunDir holds ebpfjail's state records and, when the host has none, its
// private cgroup2 and bpffs mounts. Root only.
const RunDir = "/run/ebpfjail"

// ErrNoCgroup2 means there is no cgroup2 mount and none could be made.
var ErrNoCgroup2 = errors.New("jail: no cgroup2 filesystem")

// Cgroup2Mount returns where the cgroup2 hierarchy is mounted. With none in
// /proc/mounts (e.g. under `ip netns exec`, which remounts /sys) and mount
// true, it mounts a private view of it under RunDir.
func Cgroup2Mount(mount bool) (string, error) {
	mnt, err := mounts.Cgroup2()
	if err != nil || mnt != "" || !mount {
		if err == nil && mnt == "" {
			err = ErrNoCgroup2
		}
		return mnt, err
	}
	dir := filepath.Join(RunDir, "cgroup2")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create cgroup2 mount point: %w", err)
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", 0, ""); err != nil {
		return "", fmt.Errorf("mount cgroup2 at %s: %w (%w)", dir, err, ErrNoCgroup2)
	}
	return dir, nil
}

// BPFFSMount returns a bpffs mount point, mounting one on /sys/fs/bpf (or
// under RunDir if that fails) when there is none and mount is true.
func BPFFSMount(mount bool) (string, error) {
	mnt, err := mounts.Find("bpf")
	if err != nil || mnt != "" || !mount {
		if err == nil && mnt == "" {
			err = errors.New("jail: no bpf filesystem mounted")
		}
		return mnt, err
	}
	var errs []error
	for _, dir := range []string{"/sys/fs/bpf", filepath.Join(RunDir, "bpffs")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
			errs = append(errs, fmt.Errorf("mount bpffs at %s: %w", dir, err))
			continue
		}
		return dir, nil
	}
	return "", errors.Join(errs...)
}

// killCgroup kills every process in the cgroup at dir and waits until it
// is empty. A cgroup that no longer exists is empty.
func killCgroup(dir string, timeout time.Duration) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ev, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if errors.Is(err, os.ErrNotExist) || bytes.Contains(ev, []byte("populated 0")) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read cgroup events: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %s: still populated after %v", dir, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeCgroup removes an empty cgroup directory, retrying briefly: the
// kernel may still be releasing the last task after "populated 0".
func removeCgroup(dir string) error {
	var err error
	for range 100 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// removeCgroupTree removes the cgroup at dir and the empty cgroups below
// it, deepest first: those a container engine made for a container in the
// jail and had not removed yet.
func removeCgroupTree(dir string) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return removeCgroup(dir)
}

// removeV1Mirrors removes, best effort, the cgroups a container engine
// made for a jailed container in the cgroup v1 hierarchies of a hybrid
// system: the jail's own path (ebpfjail/ID) in each.
func removeV1Mirrors(cgroup string) {
	rel := filepath.Join(filepath.Base(filepath.Dir(cgroup)), filepath.Base(cgroup))
	v1, _ := mounts.All("cgroup")
	for _, m := range v1 {
		if dir := filepath.Join(m, rel); dir != cgroup {
			removeCgroupTree(dir)
		}
	}
}

// cgroupProcs lists the pids in the cgroup at dir.
func cgroupProcs(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}
