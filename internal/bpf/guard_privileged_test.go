//go:build linux

package bpf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"golang.org/x/sys/unix"
)

// requireGuard skips the test on a kernel that cannot run the unix guard
// (no BPF LSM, or one that cannot build BPF trampolines).
func requireGuard(t *testing.T, k *kernelJail) {
	t.Helper()
	if err := k.links.UnixGuard(); err != nil {
		t.Skipf("this kernel runs no unix guard: %v", err)
	}
}

// withoutUnixHooks pretends a kernel before 6.7 for the test's Loads.
func withoutUnixHooks(t *testing.T) {
	probe := probeUnixHooks
	probeUnixHooks = func() error { return fmt.Errorf("load program: %w", unix.EINVAL) }
	t.Cleanup(func() { probeUnixHooks = probe })
}

// withoutGuard pretends a kernel without the BPF LSM for the test's Loads.
func withoutGuard(t *testing.T) {
	probe := probeUnixGuard
	probeUnixGuard = func(*btf.Cache) error { return fmt.Errorf("load program: %w", unix.ENOENT) }
	t.Cleanup(func() { probeUnixGuard = probe })
}

const unixClientEnv = "EBPFJAIL_TEST_UNIX_CLIENT"

// TestUnixClientHelper is not a test: run by runUnixClient (in the jail's
// cgroup or not), it tries each "kind:address" argument and prints
// "kind:address OK" or "kind:address EPERM" (the errno's name). Kinds:
// stream (connect), dgram-connect (connect, then send), dgram-sendto. An
// address "@name" is abstract; a relative one is resolved in the working
// directory. Unlike python3, it needs nothing but this binary.
func TestUnixClientHelper(t *testing.T) {
	if os.Getenv(unixClientEnv) != "1" {
		t.Skip("the unix socket client of the guard tests")
	}
	for _, arg := range flag.Args() {
		kind, addr, _ := strings.Cut(arg, ":")
		res := "OK"
		if err := unixAttempt(kind, addr); err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				res = unix.ErrnoName(errno)
			} else {
				res = err.Error()
			}
		}
		fmt.Println(arg, res)
	}
	os.Exit(0)
}

func unixAttempt(kind, addr string) error {
	typ := unix.SOCK_DGRAM
	if kind == "stream" {
		typ = unix.SOCK_STREAM
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrUnix{Name: addr}
	switch kind {
	case "stream":
		return unix.Connect(fd, sa)
	case "dgram-connect":
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		_, err := unix.Write(fd, []byte("c"))
		return err
	case "dgram-sendto":
		return unix.Sendto(fd, []byte("s"), 0, sa)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// runUnixClient runs TestUnixClientHelper with the attempts, in the cgroup
// at cgroup (none if empty) and the working directory dir, and returns its
// output.
func runUnixClient(t *testing.T, cgroup, dir string, attempts ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestUnixClientHelper$", "--"}, attempts...)...)
	cmd.Env = append(os.Environ(), unixClientEnv+"=1")
	cmd.Dir = dir
	if cgroup != "" {
		cg, err := os.Open(cgroup)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unix client: %v\n%s", err, out)
	}
	return string(out)
}

// spellings are ways other than p itself to name the socket file at p
// (absolute, in a directory of its own): each reaches the same inode.
// Relative ones are relative to p's directory. They make symlinks and hard
// links next to p.
func spellings(t *testing.T, p string) []string {
	t.Helper()
	dir, base := filepath.Split(p)
	symlink := filepath.Join(dir, "symlink-to-"+base)
	if err := os.Symlink(p, symlink); err != nil {
		t.Fatal(err)
	}
	relSymlink := filepath.Join(dir, "rel-symlink-to-"+base)
	if err := os.Symlink(base, relSymlink); err != nil {
		t.Fatal(err)
	}
	hardlink := filepath.Join(dir, "hardlink-to-"+base)
	if err := os.Link(p, hardlink); err != nil {
		t.Fatal(err)
	}
	return []string{
		dir + "./" + base,                // /tmp/x/./denied.sock
		"/" + p,                          // //tmp/x/denied.sock
		strings.ReplaceAll(p, "/", "//"), // //tmp//x//denied.sock
		dir + "../" + filepath.Base(dir) + "/" + base, // /tmp/x/../x/denied.sock
		"/proc/self/root" + p,
		"/proc/self/cwd/" + base,
		base, // relative, from its directory
		symlink,
		relSymlink,
		hardlink,
	}
}

// streamDgramAttempts are every way of reaching a stream socket at the
// stream spellings and a datagram one at the datagram spellings.
func streamDgramAttempts(streams, dgrams []string) []string {
	var a []string
	for _, s := range streams {
		a = append(a, "stream:"+s)
	}
	for _, d := range dgrams {
		a = append(a, "dgram-connect:"+d, "dgram-sendto:"+d)
	}
	return a
}

func TestPrivilegedUnixGuardStopsEverySpelling(t *testing.T) {
	k := newKernelJail(t)
	requireGuard(t, k)
	stream, dgram := unixSockets(t, "denied", "allowed")
	dir := filepath.Dir(stream["denied"])
	if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"]}); err != nil {
		t.Fatal(err)
	}
	denied := streamDgramAttempts(spellings(t, stream["denied"]), spellings(t, dgram["denied"]))
	allowed := streamDgramAttempts(spellings(t, stream["allowed"]), spellings(t, dgram["allowed"]))
	allowed = append(allowed, unixAttempts(stream["allowed"], dgram["allowed"])...)

	out := runUnixClient(t, k.cgroup, dir, append(slices.Clone(denied), allowed...)...)
	wantUnix(t, out, denied, "EPERM")
	wantUnix(t, out, allowed, "OK")
	stats, err := k.objs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := stats["unix_guard_denied"]; got != uint64(len(denied)) {
		t.Errorf("unix_guard_denied: got %d, want %d", got, len(denied))
	}

	// The exact spelling is stopped too: by the cgroup hooks first when the
	// kernel has them, by the guard otherwise.
	exact := unixAttempts(stream["denied"], dgram["denied"])
	wantUnix(t, runUnixClient(t, k.cgroup, dir, exact...), exact, "EPERM")

	// A sub-cgroup of the jail is the jail.
	sub := filepath.Join(k.cgroup, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	defer unix.Rmdir(sub)
	wantUnix(t, runUnixClient(t, sub, dir, denied...), denied, "EPERM")

	// Outside the jail's cgroup nothing changes.
	outside := append(slices.Clone(denied), exact...)
	wantUnix(t, runUnixClient(t, "", dir, outside...), outside, "OK")
	for _, a := range []struct{ network, addr string }{
		{"unix", "/proc/self/root" + stream["denied"]}, {"unixgram", dir + "/./denied.dgram"},
	} {
		c, err := net.DialTimeout(a.network, a.addr, 5*time.Second)
		if err != nil {
			t.Errorf("dial %s %s outside the jail: %v", a.network, a.addr, err)
			continue
		}
		c.Close()
	}
}

// The guard compares the name the server bound, too: a socket re-created at
// a denied path (a new inode), or created only after DenyUnix, is refused
// however the client reaches it.
func TestPrivilegedUnixGuardStopsSocketsBoundLaterAtADeniedPath(t *testing.T) {
	k := newKernelJail(t)
	requireGuard(t, k)
	dir, err := os.MkdirTemp("", "ebpfjail-unix")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	restarted, later := filepath.Join(dir, "restarted.sock"), filepath.Join(dir, "later.sock")

	ln, err := net.Listen("unix", restarted)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.objs.DenyUnix([]string{restarted, later}); err != nil {
		t.Fatal(err)
	}
	ln.Close() // removes the file: the daemon stops ...
	for _, p := range []string{restarted, later} {
		ln, err := net.Listen("unix", p) // ... and starts again; later starts now
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	var denied []string
	for _, p := range []string{restarted, later} {
		for _, s := range append(spellings(t, p), p) {
			denied = append(denied, "stream:"+s)
		}
	}
	wantUnix(t, runUnixClient(t, k.cgroup, dir, denied...), denied, "EPERM")
	wantUnix(t, runUnixClient(t, "", dir, denied...), denied, "OK")
}

// On a kernel with the BPF LSM but before 6.7 (no cgroup unix hooks), the
// guard alone enforces the list: exact paths and abstract names included.
func TestPrivilegedUnixGuardWithoutCgroupHooks(t *testing.T) {
	withoutUnixHooks(t)
	k := newKernelJail(t)
	requireGuard(t, k)
	if got, want := k.links.Missing(), []string{"connect_unix", "sendmsg_unix"}; !slices.Equal(got, want) {
		t.Errorf("Missing: got %v, want %v", got, want)
	}
	abstract := fmt.Sprintf("@ebpfjail-test-%d", rand.Uint64())
	stream, dgram := unixSockets(t, "denied", "allowed", abstract, abstract+"-ok")
	dir := filepath.Dir(stream["denied"])
	if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"], stream[abstract], dgram[abstract]}); err != nil {
		t.Fatal(err)
	}
	denied := unixAttempts(stream["denied"], dgram["denied"])
	denied = append(denied, unixAttempts(stream[abstract], dgram[abstract])...)
	denied = append(denied, streamDgramAttempts(spellings(t, stream["denied"]), spellings(t, dgram["denied"]))...)
	allowed := unixAttempts(stream["allowed"], dgram["allowed"])
	allowed = append(allowed, unixAttempts(stream[abstract+"-ok"], dgram[abstract+"-ok"])...)

	out := runUnixClient(t, k.cgroup, dir, append(slices.Clone(denied), allowed...)...)
	wantUnix(t, out, denied, "EPERM")
	wantUnix(t, out, allowed, "OK")
	stats, err := k.objs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := stats["unix_guard_denied"]; got != uint64(len(denied)) {
		t.Errorf("unix_guard_denied: got %d, want %d", got, len(denied))
	}
	if got := stats["unix_denied"]; got != 0 {
		t.Errorf("unix_denied without the cgroup hooks: got %d", got)
	}
}

// Without the guard (no BPF LSM) the jail runs, the exact paths are still
// refused by the cgroup hooks, and UnixGuard says why it is missing.
func TestPrivilegedUnixGuardIsOptional(t *testing.T) {
	withoutGuard(t)
	k := newKernelJail(t)
	if m := k.links.Missing(); len(m) > 0 {
		t.Fatalf("Missing: got %v, want none (the guard is not a cgroup program)", m)
	}
	if err := k.links.UnixGuard(); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("UnixGuard: got %v, want ErrNotSupported", err)
	}
	if err := k.objs.ProbeUnixGuard(); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("ProbeUnixGuard: got %v, want ErrNotSupported", err)
	}
	stream, dgram := unixSockets(t, "denied")
	dir := filepath.Dir(stream["denied"])
	if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"]}); err != nil {
		t.Fatal(err)
	}
	exact := unixAttempts(stream["denied"], dgram["denied"])
	other := streamDgramAttempts([]string{dir + "/./denied.sock"}, []string{dir + "/./denied.dgram"})
	out := runUnixClient(t, k.cgroup, dir, append(slices.Clone(exact), other...)...)
	wantUnix(t, out, exact, "EPERM")
	wantUnix(t, out, other, "OK")
}

func TestPrivilegedProbeUnixGuard(t *testing.T) {
	k := newKernelJail(t)
	err := k.objs.ProbeUnixGuard()
	if why := k.links.UnixGuard(); why != nil {
		t.Logf("no unix guard: %v; ProbeUnixGuard: %v", why, err)
		if !errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("ProbeUnixGuard without a guard (%v): got %v, want ErrNotSupported", why, err)
		}
		return
	}
	if err != nil {
		t.Errorf("ProbeUnixGuard: %v", err)
	}
}

// Pinned, the guard outlives its supervisor: with every fd of the jail's
// programs, links and maps closed, the jail still fails closed, until the
// pins are removed.
func TestPrivilegedUnixGuardFailsClosedWhenPinned(t *testing.T) {
	k := newKernelJail(t)
	requireGuard(t, k)
	pins := filepath.Join("/sys/fs/bpf", "ebpfjail-test-"+filepath.Base(t.TempDir()))
	stream, dgram := unixSockets(t, "denied")
	dir := filepath.Dir(stream["denied"])
	if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"]}); err != nil {
		t.Fatal(err)
	}
	if err := k.links.Pin(pins); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemovePins(pins) })
	// The supervisor dies: its fds close, the pins stay.
	for _, l := range k.links.links {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	k.links.links = nil
	if err := k.objs.Close(); err != nil {
		t.Fatal(err)
	}
	denied := streamDgramAttempts([]string{"/proc/self/root" + stream["denied"]}, []string{dir + "//denied.dgram"})
	wantUnix(t, runUnixClient(t, k.cgroup, dir, denied...), denied, "EPERM")

	if err := RemovePins(pins); err != nil {
		t.Fatal(err)
	}
	// The links go with their last reference: give the kernel a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := runUnixClient(t, k.cgroup, dir, denied...)
		if strings.Count(out, " OK\n") == len(denied) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the pins are removed: got\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The guard and the exec hook share the jail's cgroup: closing the exec
// watcher leaves the guard in force; another cgroup is refused.
func TestPrivilegedUnixGuardAndExecWatcherShareTheCgroup(t *testing.T) {
	k := newKernelJail(t)
	other := filepath.Join(filepath.Dir(k.cgroup), "ebpfjail-bpfother-"+filepath.Base(t.TempDir()))
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(other)
	if _, err := k.objs.WatchExec(other); err == nil || !strings.Contains(err.Error(), "another cgroup") {
		t.Fatalf("WatchExec of another cgroup: got %v, want an error", err)
	}
	w, err := k.objs.WatchExec(k.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for { // drained, the watcher frees the object for another
		if _, err := w.Next(); err != nil {
			break
		}
	}
	k.objs.cgMu.Lock()
	users := k.objs.cgUsers
	k.objs.cgMu.Unlock()
	if users != 1 {
		t.Errorf("jail cgroup users after the watcher closed: got %d, want 1 (the links)", users)
	}

	if k.links.UnixGuard() == nil {
		stream, dgram := unixSockets(t, "denied")
		dir := filepath.Dir(stream["denied"])
		if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"]}); err != nil {
			t.Fatal(err)
		}
		denied := streamDgramAttempts([]string{dir + "/./denied.sock"}, []string{dir + "/./denied.dgram"})
		wantUnix(t, runUnixClient(t, k.cgroup, dir, denied...), denied, "EPERM")
	}

	// Once the links are closed too, the slot is free for another cgroup.
	if err := k.links.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = k.objs.WatchExec(other)
	if err != nil {
		t.Fatalf("WatchExec of another cgroup once the links are closed: %v", err)
	}
	w.Close()
}

// On overlayfs (and btrfs) stat reports another device than the one of the
// superblock the socket's inode is on: DenyUnix adds the mount's too.
func TestPrivilegedDenyUnixOnOverlayfs(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	lower, upperFS, merged := filepath.Join(base, "lower"), filepath.Join(base, "upperfs"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upperFS, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The upper layer on a filesystem of its own, so the layers differ.
	if err := unix.Mount("tmpfs", upperFS, "tmpfs", 0, ""); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(upperFS, unix.MNT_DETACH) })
	upper, work := filepath.Join(upperFS, "upper"), filepath.Join(upperFS, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("mount overlayfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })

	sock := filepath.Join(merged, "denied.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mounts mountDevs
	keys, err := socketInodes(sock, &mounts)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(sock, &st); err != nil {
		t.Fatal(err)
	}
	var overlay unix.Stat_t // the merged directory reports the overlay's own device
	if err := unix.Stat(merged, &overlay); err != nil {
		t.Fatal(err)
	}
	statKey := jailUnixIno{Dev: kernelDev(unix.Major(st.Dev), unix.Minor(st.Dev)), Ino: st.Ino}
	sbKey := jailUnixIno{Dev: kernelDev(unix.Major(overlay.Dev), unix.Minor(overlay.Dev)), Ino: st.Ino}
	if statKey == sbKey {
		t.Skip("this overlayfs reports its own device for its files: nothing to add")
	}
	if want := []jailUnixIno{statKey, sbKey}; !slices.Equal(keys, want) {
		t.Fatalf("keys: got %+v, want %+v (stat's, then the superblock's)", keys, want)
	}

	k := newKernelJail(t)
	requireGuard(t, k)
	if err := k.objs.DenyUnix([]string{sock}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	denied := []string{"stream:" + merged + "/./denied.sock", "stream:/proc/self/root" + sock}
	wantUnix(t, runUnixClient(t, k.cgroup, merged, denied...), denied, "EPERM")
}
