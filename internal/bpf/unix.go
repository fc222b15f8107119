//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/ebpfjail/ebpfjail/internal/mounts"
	"golang.org/x/sys/unix"
)

// DefaultUnixDeny are the unix sockets a jail may not reach: each one leads
// out of the jail without an inet socket. The resolver daemons look names up
// for the caller (DNS that never touches port 53), and a container engine
// starts a container outside the jail's cgroup.
//
// Three layers enforce the list:
//
//   - On every kernel, the command runs in a mount namespace of its own in
//     which each listed socket that exists when it starts is covered by a
//     bind mount of /dev/null (internal/jail's Command.Mask): every spelling
//     of the path ("/run//docker.sock", "/run/./docker.sock", a relative
//     path, a symlink, /proc/self/root/..., /proc/self/fd/N) resolves to the
//     mask and connect() fails. A socket created after the start (a daemon
//     started or restarted later) is not masked; a command running as root
//     can unmount the masks.
//   - The cgroup hooks (Linux 6.7+) match the address the client passes to
//     connect() or sendto(), before the kernel resolves the path: a path is
//     denied there only as written, so each socket is listed under both /run
//     and /var/run (clients use either; /var/run is usually a symlink to
//     /run). They also catch a listed socket created after the start, by
//     that spelling.
//   - The unix guard (BPF LSM, when the kernel has it: Links.UnixGuard)
//     matches the socket the address resolved to, so any spelling of a
//     socket created later, or a hard link, is stopped too; see DenyUnix for
//     what it compares.
//
// What stays open without the guard: another spelling of a socket created
// after the start; a hard link to a listed socket made before the start
// (fs.protected_hardlinks keeps users from linking sockets they do not
// own; root can); /proc/PID/root of a process outside the jail, which only
// ptrace access rules close.
var DefaultUnixDeny = []string{
	// systemd-resolved's varlink API (glibc's nss-resolve)
	"/run/systemd/resolve/io.systemd.Resolve",
	"/var/run/systemd/resolve/io.systemd.Resolve",
	"/run/systemd/resolve/io.systemd.Resolve.Monitor",
	"/var/run/systemd/resolve/io.systemd.Resolve.Monitor",
	// nscd (glibc asks it first for hosts when it runs)
	"/run/nscd/socket",
	"/var/run/nscd/socket",
	// container engines
	"/run/docker.sock",
	"/var/run/docker.sock",
	"/run/containerd/containerd.sock",
	"/var/run/containerd/containerd.sock",
	"/run/podman/podman.sock",
	"/var/run/podman/podman.sock",
}

// UserUnixDeny are the per-user sockets of rootless container engines for
// uid, to add to DefaultUnixDeny for the user the jail runs as.
func UserUnixDeny(uid int) []string {
	dir := "/run/user/" + strconv.Itoa(uid)
	return []string{
		dir + "/docker.sock",
		dir + "/podman/podman.sock",
	}
}

// unix_deny's values (bpf/jail.c UNIX_DENY, UNIX_ALLOW).
const (
	unixDeny  uint8 = 1
	unixAllow uint8 = 2
)

// maxUnixDeny is unix_deny's max_entries in bpf/jail.c.
const maxUnixDeny = 1024

// maxUnixDenyIno is unix_deny_ino's max_entries in bpf/jail.c: up to two
// inode keys per path (socketInodes).
const maxUnixDenyIno = 2 * maxUnixDeny

// DenyUnix adds paths to the unix sockets the jail may not connect() or
// send to (EPERM). A path is absolute ("/run/docker.sock") or an abstract
// name, written with a leading NUL or "@" as Go's net package does ("@name"
// is "\x00name"). An abstract name matches also with trailing NULs.
//
// What is compared:
//
//   - the address a client passes, before the kernel resolves it (the
//     cgroup hooks, Linux 6.7+): the path exactly as written, nothing
//     normalised (see DefaultUnixDeny);
//   - the socket the address resolved to (the unix guard, BPF LSM): the
//     inode the socket is bound to, if the path names a socket now (it is
//     stat'ed here, following symlinks), however the client spells or
//     reaches it; and the name its server gave bind(), so a socket bound at
//     a listed path later (a daemon started or restarted after DenyUnix: a
//     new inode) is still refused when its server binds that exact path.
//
// A path that does not exist yet, or is not a socket, is kept for the name
// checks only: call DenyUnix again once it exists to add its inode. An
// inode is remembered, not its path: a socket removed and re-created at
// another path keeps none of it, and one at a listed path is caught by its
// bound name. Without the kernel hooks the lists are kept but not
// enforced: Links.Missing and Links.UnixGuard say which layer is missing.
func (o *Objects) DenyUnix(paths []string) error {
	keys := make([]jailUnixPath, 0, len(paths))
	for _, p := range paths {
		k, err := unixKey(p)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	type inoKey struct {
		k    jailUnixIno
		path string
	}
	var inos []inoKey
	var devs mountDevs
	for i, p := range paths {
		if keys[i].Path[0] == 0 { // abstract: no inode
			continue
		}
		ks, err := socketInodes(p, &devs)
		if err != nil {
			return err
		}
		for _, k := range ks {
			inos = append(inos, inoKey{k, p})
		}
	}
	for i, k := range keys {
		if err := o.objs.UnixDeny.Put(&k, unixDeny); err != nil {
			if errors.Is(err, unix.E2BIG) {
				return fmt.Errorf("deny unix socket %q: more than %d addresses: %w", paths[i], maxUnixDeny, err)
			}
			return fmt.Errorf("deny unix socket %q: %w", paths[i], err)
		}
	}
	for _, ik := range inos {
		if err := o.objs.UnixDenyIno.Put(&ik.k, uint8(1)); err != nil {
			if errors.Is(err, unix.E2BIG) {
				return fmt.Errorf("deny unix socket %q: more than %d socket inodes: %w", ik.path, maxUnixDenyIno, err)
			}
			return fmt.Errorf("deny unix socket %q: %w", ik.path, err)
		}
	}
	return nil
}

// kernelDev is a device number as the kernel keeps it in struct
// super_block's s_dev: MKDEV(major, minor) = major<<20 | minor. User space
// sees another encoding (stat's st_dev is glibc's/the kernel's
// huge_encode_dev: 254:0 is 0xfe00 there, 0xfe00000 here), so the two are
// only compared through major and minor.
func kernelDev(major, minor uint32) uint64 {
	return uint64(major)<<20 | uint64(minor&(1<<20-1))
}

// socketInodes returns the unix_deny_ino keys of the socket at path
// (following symlinks), none if nothing or no socket is there.
//
// The guard reads the peer's bound inode: i_ino, and the device of its
// superblock. stat reports that device for most filesystems, but not for
// all: btrfs reports a subvolume's, overlayfs one of its layers'. The
// device /proc/self/mountinfo shows for the mount the path is on is the
// superblock's own, so that one is added when it differs.
func socketInodes(path string, devs *mountDevs) ([]jailUnixIno, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_SYNC_AS_STAT,
		unix.STATX_TYPE|unix.STATX_INO|unix.STATX_MNT_ID, &st)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return nil, nil // nothing there (yet): a client could not reach it either
	case err != nil:
		return nil, fmt.Errorf("deny unix socket %q: %w", path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return nil, nil
	}
	keys := []jailUnixIno{{Dev: kernelDev(st.Dev_major, st.Dev_minor), Ino: st.Ino}}
	if st.Mask&unix.STATX_MNT_ID != 0 {
		dev, ok, err := devs.dev(st.Mnt_id)
		if err != nil {
			return nil, fmt.Errorf("deny unix socket %q: %w", path, err)
		}
		if ok && dev != keys[0].Dev {
			keys = append(keys, jailUnixIno{Dev: dev, Ino: st.Ino})
		}
	}
	return keys, nil
}

// mountDevs maps mount ids to their superblock's device (kernelDev), read
// from /proc/self/mountinfo once, when first needed.
type mountDevs struct {
	devs map[uint64]uint64
}

func (m *mountDevs) dev(mntID uint64) (uint64, bool, error) {
	if m.devs == nil {
		infos, err := mounts.ReadInfo()
		if err != nil {
			return 0, false, err
		}
		m.devs = mountDevsOf(infos)
	}
	dev, ok := m.devs[mntID]
	return dev, ok, nil
}

// mountDevsOf maps each mount's id to its device as the kernel keeps it.
func mountDevsOf(infos []mounts.Info) map[uint64]uint64 {
	devs := make(map[uint64]uint64, len(infos))
	for _, in := range infos {
		devs[in.ID] = kernelDev(in.Major, in.Minor)
	}
	return devs
}

// unixKey is the unix_deny key of a path: the bytes the kernel compares,
// zero padded (struct unix_path in bpf/jail.h).
func unixKey(p string) (jailUnixPath, error) {
	var k jailUnixPath
	abstract := strings.HasPrefix(p, "@") || strings.HasPrefix(p, "\x00")
	switch {
	case abstract:
		p = "\x00" + p[1:]
		if len(p) == 1 {
			return k, fmt.Errorf("unix socket %q: empty abstract name", p)
		}
		if len(p) > len(k.Path) {
			return k, fmt.Errorf("unix socket %q: abstract name longer than %d bytes", p, len(k.Path)-1)
		}
	case strings.HasPrefix(p, "/"):
		if strings.IndexByte(p, 0) >= 0 {
			return k, fmt.Errorf("unix socket %q: NUL in path", p)
		}
		// One byte is left for the NUL most clients pass.
		if len(p) > len(k.Path)-1 {
			return k, fmt.Errorf("unix socket %q: path longer than %d bytes", p, len(k.Path)-1)
		}
	default:
		return k, fmt.Errorf("unix socket %q: not an absolute path or an abstract name (@name)", p)
	}
	for i := range len(p) {
		k.Path[i] = int8(p[i])
	}
	return k, nil
}

// AllowAbstractOnly turns abstract unix names into an allow list: the jail
// may connect or send to the abstract sockets named (each "@name") and to no
// other, its own included, since the hooks cannot tell who bound a name.
// It is for --allow-unix @NAME, where the jail's Landlock abstract socket
// scope (which refuses only sockets bound outside the jail, but has no
// per-name exception) is left off. Needs the cgroup unix hooks (Linux
// 6.7+): Links.Missing says when they are absent.
func (o *Objects) AllowAbstractOnly(names []string) error {
	for _, n := range names {
		k, err := unixKey(n)
		if err != nil {
			return err
		}
		if k.Path[0] != 0 {
			return fmt.Errorf("allow abstract unix socket %q: not an abstract name (@name)", n)
		}
		if err := o.objs.UnixDeny.Put(&k, unixAllow); err != nil {
			return fmt.Errorf("allow abstract unix socket %q: %w", n, err)
		}
	}
	if err := o.objs.AbstractAllowOnly.Set(uint32(1)); err != nil {
		return fmt.Errorf("set abstract unix allow list: %w", err)
	}
	return nil
}

// unixPrograms are the programs a kernel before 6.7 cannot load.
var unixPrograms = []string{jailProgJailConnectUnix, jailProgJailSendmsgUnix}

// probeUnixHooks loads a minimal connect_unix program: the kernel refuses
// an attach type it does not know with EINVAL. A variable so tests can
// pretend an older kernel.
var probeUnixHooks = func() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       ebpf.CGroupSockAddr,
		AttachType: ebpf.AttachCgroupUnixConnect,
		Instructions: asm.Instructions{
			asm.LoadImm(asm.R0, 1, asm.DWord),
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		return err
	}
	return p.Close()
}
