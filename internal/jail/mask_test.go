//go:build linux

package jail

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestAliasesFindTheSocketThroughEveryMountOfItsFilesystem(t *testing.T) {
	mountinfo := `22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
23 1 0:21 /engine /srv/engine\040dir rw shared:5 - tmpfs tmpfs rw
24 1 0:21 /other /srv/other rw shared:5 - tmpfs tmpfs rw
25 1 0:30 / /var/run rw - tmpfs tmpfs rw
26 1 0:21 / /chroot/run rw - tmpfs tmpfs rw
27 1 0:21 /engine/docker.sock /srv/one.sock rw - tmpfs tmpfs rw
`
	infos := mounts.ParseInfo(mountinfo)
	got := aliases(infos, 22, "/run/engine/docker.sock")
	want := []string{"/srv/engine dir/docker.sock", "/chroot/run/engine/docker.sock", "/srv/one.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("aliases of /run/engine/docker.sock: got %q, want %q", got, want)
	}
	// From a bind mount back to the others.
	got = aliases(infos, 23, "/srv/engine dir/docker.sock")
	want = []string{"/run/engine/docker.sock", "/chroot/run/engine/docker.sock", "/srv/one.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("aliases from the bind mount: got %q, want %q", got, want)
	}
	if got := aliases(infos, 99, "/run/x"); got != nil {
		t.Errorf("unknown mount: got %q, want none", got)
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		dir, p, rel string
		ok          bool
	}{
		{"/", "/run/x", "run/x", true},
		{"/run", "/run/x", "x", true},
		{"/run", "/run", ".", true},
		{"/run", "/running/x", "", false},
		{"/a/b", "/a", "", false},
	} {
		rel, ok := within(c.dir, c.p)
		if rel != c.rel || ok != c.ok {
			t.Errorf("within(%q, %q): got %q %v, want %q %v", c.dir, c.p, rel, ok, c.rel, c.ok)
		}
	}
}

// countingListener accepts on a unix socket at path and counts what it
// accepted, until the test ends.
func countingListener(t *testing.T, path string) *atomic.Int32 {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n
}

func TestPrivilegedMasksCoverEverySpellingAndOtherMountsButNotTheHost(t *testing.T) {
	testutil.RequireRoot(t)
	// Short: a unix socket path has 107 bytes.
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "engine", "engine.sock")
	os.Mkdir(filepath.Dir(sock), 0o755)
	accepted := countingListener(t, sock)
	link := filepath.Join(dir, "link.sock")
	os.Symlink(sock, link)
	other := filepath.Join(dir, "other.sock")
	otherAccepted := countingListener(t, other)
	alias := filepath.Join(shortTempDir(t), "alias")
	os.Mkdir(alias, 0o755)
	notSocket := filepath.Join(dir, "engine") // a directory on the list

	type reply struct {
		masked []string
		errs   map[string]error
		err    error
	}
	ch := make(chan reply, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		// The test's own namespace, for the second mount of the
		// filesystem; maskSockets makes another inside it.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			ch <- reply{err: err}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			ch <- reply{err: err}
			return
		}
		if err := unix.Mount(filepath.Dir(sock), alias, "", unix.MS_BIND, ""); err != nil {
			ch <- reply{err: err}
			return
		}
		masked, err := maskSockets([]string{link, notSocket, "@abstract", filepath.Join(dir, "absent.sock")})
		if err != nil {
			ch <- reply{err: err}
			return
		}
		errs := map[string]error{}
		unix.Chdir(dir)
		for _, p := range []string{sock, "/" + sock, filepath.Dir(sock) + "/./engine.sock",
			filepath.Dir(sock) + "/../engine/engine.sock", "engine/engine.sock", link,
			"/proc/thread-self/root" + sock, filepath.Join(alias, "engine.sock"), other} {
			errs[p] = connectUnix(p)
		}
		if fd, err := unix.Open(sock, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			errs["/proc/self/fd/N"] = connectUnix(fdPath(fd))
			unix.Close(fd)
		}
		ch <- reply{masked: masked, errs: errs}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := []string{sock, filepath.Join(alias, "engine.sock")}; !slices.Equal(r.masked, want) {
		t.Errorf("masked: got %q, want %q", r.masked, want)
	}
	for p, err := range r.errs {
		switch {
		case p == other && err != nil:
			t.Errorf("%s (not listed): got %v, want it reached", p, err)
		case p != other && !errors.Is(err, unix.ECONNREFUSED):
			t.Errorf("%s: got %v, want ECONNREFUSED (the mask)", p, err)
		}
	}
	if len(r.errs) != 10 {
		t.Errorf("tried %d spellings, want 10: %v", len(r.errs), r.errs)
	}
	// Outside the namespace, nothing changed.
	if err := connectUnix(sock); err != nil {
		t.Errorf("from the host: got %v, want the socket reached", err)
	}
	waitAccepted(t, otherAccepted, 1)
	waitAccepted(t, accepted, 1)
}

// waitAccepted waits until n counts want, and fails if it counts more.
func waitAccepted(t *testing.T, n *atomic.Int32, want int32) {
	t.Helper()
	for range 100 {
		if n.Load() >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.Load(); got != want {
		t.Errorf("listener accepted %d connections, want %d", got, want)
	}
}

func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ebpfjail-mask-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestPrivilegedProbeMask(t *testing.T) {
	testutil.RequireRoot(t)
	if err := ProbeMask(); err != nil {
		t.Errorf("ProbeMask: %v", err)
	}
}
