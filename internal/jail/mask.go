//go:build linux

package jail

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
)

// The cgroup unix hooks compare the address a client writes, not the
// socket it reaches, so "//run/docker.sock", "/run/./docker.sock", a
// relative path, a symlink, /proc/self/root/... or /proc/self/fd/N of an
// O_PATH descriptor all get past them. So the command runs in a mount
// namespace of its own in which each denied socket that exists when it
// starts is covered by a bind mount of /dev/null: every spelling of the
// path resolves to the mask, which is no socket, and connect() or sendto()
// fails (ECONNREFUSED). Nothing mounted there propagates back to the host
// (the tree is a slave of the host's), and the host's later mounts still
// appear in the jail.
//
// What the masks do not cover:
//   - a socket created after the command started: a daemon started or
//     restarted later (unlinking a path the host sees removes the mask of
//     every namespace with it) is reached past the cgroup hooks by any
//     other spelling;
//   - a hard link made before the command started (fs.protected_hardlinks
//     stops a user linking a socket they do not own; root can; inside the
//     jail no path leads to the socket to link it), and a mount made on the
//     host after the start that shows the socket elsewhere (the mounts of
//     its filesystem that exist at start are all masked: socketAliases);
//   - /proc/PID/root of a process outside the jail, which resolves in that
//     process's namespace: only who may look there (ptrace access) stops it;
//   - a command that runs as root (--user root): it may unmount the masks.
//
// Inside the namespace an unprivileged user can neither unmount nor unlink
// a mask, and in a user namespace of its own the masks come locked to
// their parents (a non-recursive bind of a parent is refused).

// maskSource is what covers a denied socket: a character device, so not a
// socket, that everyone has.
const maskSource = "/dev/null"

// masked is one socket to cover: an O_PATH descriptor of it, and the
// path it was found at.
type masked struct {
	fd   int
	path string
}

// maskSockets moves the calling thread into a new mount namespace and
// covers each of paths that is a unix socket now (after following
// symlinks) with maskSource. It must run on a locked thread that is never
// unlocked, before anything (Landlock) forbids mount changes; the command
// forked from that thread inherits the namespace. Paths that do not exist
// or are not sockets are left alone; abstract names ("@name") have no
// path. It returns the paths it covered. Any failure after the unshare is
// an error: the caller must not start the command.
func maskSockets(paths []string) ([]string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("unshare mount namespace: %w", err)
	}
	// Slave, not private: the host's mounts still reach the jail, and
	// none of the jail's reaches the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("make the jail's mounts slaves of the host's: %w", err)
	}
	src, err := openMaskSource()
	if err != nil {
		return nil, err
	}
	defer unix.Close(src)
	targets, err := maskTargets(paths)
	defer func() {
		for _, t := range targets {
			unix.Close(t.fd)
		}
	}()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(targets))
	for _, t := range targets {
		// Mounting onto the descriptor's magic link covers exactly what
		// was opened and checked, even if the path changed since.
		if err := unix.Mount(fdPath(src), fdPath(t.fd), "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("mask unix socket %s: %w", t.path, err)
		}
		out = append(out, t.path)
	}
	return out, nil
}

// fdPath names fd by its magic link. The descriptor table is the
// process's, but the link is looked up in this thread's namespace.
func fdPath(fd int) string { return "/proc/thread-self/fd/" + strconv.Itoa(fd) }

// openMaskSource opens maskSource and checks it is the null device, so a
// mask is never something else that happens to be there.
func openMaskSource() (int, error) {
	fd, err := unix.Open(maskSource, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s to mask unix sockets: %w", maskSource, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat %s: %w", maskSource, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		unix.Close(fd)
		return -1, fmt.Errorf("mask unix sockets: %s is not the null device", maskSource)
	}
	return fd, nil
}

// maskTargets opens each of paths that is a socket now, and every other
// name of it through another mount of its filesystem, once each.
func maskTargets(paths []string) ([]masked, error) {
	var out []masked
	seen := map[string]bool{}
	add := func(fd int) {
		real, err := os.Readlink(fdPath(fd))
		if err != nil || seen[real] {
			unix.Close(fd)
			return
		}
		seen[real] = true
		out = append(out, masked{fd: fd, path: real})
	}
	var mounts []mounts.Info
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			continue // an abstract name
		}
		fd, err := openSocket(p, 0)
		if err != nil {
			return out, err
		}
		if fd < 0 {
			continue
		}
		aliases, err := socketAliases(fd, &mounts)
		if err != nil {
			unix.Close(fd)
			return out, fmt.Errorf("mask unix socket %s: %w", p, err)
		}
		add(fd)
		for _, a := range aliases {
			afd, err := openSocket(a, unix.O_NOFOLLOW)
			if err != nil {
				return out, err
			}
			if afd >= 0 && sameFile(fd, afd) {
				add(afd)
			} else if afd >= 0 {
				unix.Close(afd)
			}
		}
	}
	return out, nil
}

// openSocket opens path with O_PATH (following symlinks unless flags say
// otherwise) and returns -1 when nothing, or no socket, is there.
func openSocket(p string, flags int) (int, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|flags, 0)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return -1, nil // nothing there: a client cannot reach it either
	case err != nil:
		return -1, fmt.Errorf("open unix socket %s to mask it: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat unix socket %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// socketAliases are the other paths at which the socket open as fd shows
// through another mount of the same filesystem (a bind mount of /run
// elsewhere): a mask on one mount does not cover the others.
func socketAliases(fd int, infos *[]mounts.Info) ([]string, error) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &st); err != nil {
		return nil, fmt.Errorf("statx: %w", err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return nil, nil // before Linux 5.8: the path's own mount only
	}
	real, err := os.Readlink(fdPath(fd))
	if err != nil {
		return nil, err
	}
	if *infos == nil {
		// This thread's mounts: /proc/self is the main thread's, which
		// stays in the host's namespace.
		b, err := os.ReadFile("/proc/thread-self/mountinfo")
		if err != nil {
			return nil, err
		}
		*infos = mounts.ParseInfo(string(b))
	}
	return aliases(*infos, st.Mnt_id, real), nil
}

// aliases maps real (a path on mount mntID) to the paths the same file has
// on every other mount of that filesystem whose root contains it.
func aliases(infos []mounts.Info, mntID uint64, real string) []string {
	var own *mounts.Info
	for i := range infos {
		if infos[i].ID == mntID {
			own = &infos[i]
		}
	}
	if own == nil {
		return nil
	}
	rel, ok := within(own.Point, real)
	if !ok {
		return nil
	}
	inFS := path.Join(own.Root, rel) // the file's path inside its filesystem
	var out []string
	for _, m := range infos {
		if m.ID == mntID || m.Major != own.Major || m.Minor != own.Minor {
			continue
		}
		if r, ok := within(m.Root, inFS); ok {
			out = append(out, path.Join(m.Point, r))
		}
	}
	return out
}

// within returns p relative to dir ("." for dir itself) if p is dir or
// under it.
func within(dir, p string) (string, bool) {
	if dir == "/" {
		rest, ok := strings.CutPrefix(p, "/")
		return rest, ok
	}
	if p == dir {
		return ".", true
	}
	if rest, ok := strings.CutPrefix(p, dir+"/"); ok {
		return rest, true
	}
	return "", false
}

// ProbeMask masks a scratch socket as Start does, on a thread of its own,
// and checks that a spelling of its path reaches the mask there and the
// socket still outside.
func ProbeMask() error {
	dir, err := os.MkdirTemp("", "ebpfjail-probe-")
	if err != nil {
		return fmt.Errorf("probe masks: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "probe.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("probe masks: %w", err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: sock}); err != nil {
		return fmt.Errorf("probe masks: bind %s: %w", sock, err)
	}
	if err := unix.Listen(ln, 4); err != nil {
		return fmt.Errorf("probe masks: %w", err)
	}
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if _, err := maskSockets([]string{sock}); err != nil {
			ch <- err
			return
		}
		if err := connectUnix("/" + sock); !errors.Is(err, unix.ECONNREFUSED) {
			ch <- fmt.Errorf("probe masks: //%s got %v, want ECONNREFUSED from the mask", sock, err)
			return
		}
		ch <- nil
	}()
	if err := <-ch; err != nil {
		return err
	}
	if err := connectUnix(sock); err != nil {
		return fmt.Errorf("probe masks: the mask showed outside its namespace: %w", err)
	}
	return nil
}

// connectUnix connects a stream socket to path from the calling thread,
// whose mount namespace resolves it.
func connectUnix(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: path})
}
