package bpf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// DefaultUnixDeny are the unix sockets a jail may not reach: each one leads
// out of the jail without an inet socket. The resolver daemons look names up
// for the caller (DNS that never touches port 53), and a container engine
// starts a container outside the jail's cgroup.
//
// The kernel matches the address the client passes to connect() or
// sendto(), before it resolves the path: a path is denied only as written.
// So each socket is listed under both /run and /var/run (clients use either;
// /var/run is usually a symlink to /run), and a client that reaches a socket
// by another spelling ("/run//docker.sock", a relative path, another symlink
// or a hard link) is not stopped by this list.
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

// maxUnixDeny is unix_deny's max_entries in bpf/jail.c.
const maxUnixDeny = 1024

// DenyUnix adds paths to the unix socket addresses the jail may not
// connect() or sendto() (EPERM). A path is absolute ("/run/docker.sock") or
// an abstract name, written with a leading NUL or "@" as Go's net package
// does ("@name" is "\x00name"). Nothing is normalised: give the path as
// clients write it (see DefaultUnixDeny). An abstract name matches also
// with trailing NULs. Without the kernel hooks (Linux before 6.7) the list
// is kept but not enforced; Links.Missing says so.
func (o *Objects) DenyUnix(paths []string) error {
	keys := make([]jailUnixPath, 0, len(paths))
	for _, p := range paths {
		k, err := unixKey(p)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	for i, k := range keys {
		if err := o.objs.UnixDeny.Put(&k, uint8(1)); err != nil {
			if errors.Is(err, unix.E2BIG) {
				return fmt.Errorf("deny unix socket %q: more than %d addresses: %w", paths[i], maxUnixDeny, err)
			}
			return fmt.Errorf("deny unix socket %q: %w", paths[i], err)
		}
	}
	return nil
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
