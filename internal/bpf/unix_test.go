//go:build linux

package bpf

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
	"golang.org/x/sys/unix"
)

func TestUnixKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the key's bytes up to its zero padding
		err      string
	}{
		{in: "/run/docker.sock", want: "/run/docker.sock"},
		{in: "@ebpfjail", want: "\x00ebpfjail"},
		{in: "\x00ebpfjail", want: "\x00ebpfjail"},
		{in: "/" + strings.Repeat("a", 106), want: "/" + strings.Repeat("a", 106)},
		{in: "@" + strings.Repeat("a", 107), want: "\x00" + strings.Repeat("a", 107)},
		{in: "/" + strings.Repeat("a", 107), err: "longer than 107"},
		{in: "@" + strings.Repeat("a", 108), err: "longer than 107"},
		{in: "@", err: "empty abstract name"},
		{in: "run/docker.sock", err: "not an absolute path"},
		{in: "", err: "not an absolute path"},
		{in: "/run/x\x00y", err: "NUL in path"},
	} {
		k, err := unixKey(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("unixKey(%q): got %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("unixKey(%q): %v", tc.in, err)
			continue
		}
		var want jailUnixPath
		for i := range len(tc.want) {
			want.Path[i] = int8(tc.want[i])
		}
		if k != want {
			t.Errorf("unixKey(%q): got %v", tc.in, k.Path)
		}
	}
}

func TestDefaultUnixDenyIsValid(t *testing.T) {
	for _, p := range append(DefaultUnixDeny, UserUnixDeny(1000)...) {
		if _, err := unixKey(p); err != nil {
			t.Error(err)
		}
	}
	// Each socket under /run is listed under /var/run too.
	for _, p := range DefaultUnixDeny {
		if rest, ok := strings.CutPrefix(p, "/run/"); ok && !slices.Contains(DefaultUnixDeny, "/var/run/"+rest) {
			t.Errorf("%s is listed without /var/run/%s", p, rest)
		}
	}
}

func TestUnixDenyMapMatchesC(t *testing.T) {
	spec, err := loadJail()
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Maps["unix_deny"]
	if got, want := m.KeySize, uint32(unsafe.Sizeof(jailUnixPath{})); got != want || got != 108 {
		t.Errorf("unix_deny key size: got %d, want %d (struct unix_path, 108)", got, want)
	}
	if got := m.MaxEntries; got != maxUnixDeny {
		t.Errorf("unix_deny max_entries: got %d, want maxUnixDeny %d", got, maxUnixDeny)
	}
	ino := spec.Maps["unix_deny_ino"]
	if got, want := ino.KeySize, uint32(unsafe.Sizeof(jailUnixIno{})); got != want || got != 16 {
		t.Errorf("unix_deny_ino key size: got %d, want %d (struct unix_ino, 16)", got, want)
	}
	if got := ino.MaxEntries; got != maxUnixDenyIno {
		t.Errorf("unix_deny_ino max_entries: got %d, want maxUnixDenyIno %d", got, maxUnixDenyIno)
	}
	for _, name := range append(slices.Clone(unixPrograms), guardPrograms...) {
		if spec.Programs[name] == nil {
			t.Errorf("no program %s in the object", name)
		}
	}
	for i, name := range guardPrograms {
		if p := spec.Programs[name]; p != nil && p.AttachTo != strings.TrimPrefix(guardNames[i], "lsm_") {
			t.Errorf("%s attaches to %q, want the hook of %s", name, p.AttachTo, guardNames[i])
		}
	}
}

func TestKernelDev(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint32
		want         uint64
	}{
		{254, 0, 0xfe00000}, // st_dev 0xfe00 in user space
		{0, 42, 42},
		{8, 1, 8<<20 | 1},
		{259, 1 << 19, 259<<20 | 1<<19},
	} {
		if got := kernelDev(tc.major, tc.minor); got != tc.want {
			t.Errorf("kernelDev(%d, %d): got %#x, want %#x", tc.major, tc.minor, got, tc.want)
		}
	}
}

func TestParseMountDevs(t *testing.T) {
	got := mountDevsOf(mounts.ParseInfo(`22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
bad line
68 44 0:41 / /tmp/ovt/m rw,relatime - overlay overlay rw,lowerdir=/a
`))
	want := map[uint64]uint64{22: 21, 27: 254 << 20, 68: 41}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSocketInodes(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(sock, &st); err != nil {
		t.Fatal(err)
	}
	want := jailUnixIno{Dev: kernelDev(unix.Major(st.Dev), unix.Minor(st.Dev)), Ino: st.Ino}
	var mounts mountDevs
	for _, p := range []string{sock, link, dir + "/./s.sock"} {
		keys, err := socketInodes(p, &mounts)
		if err != nil {
			t.Fatal(err)
		}
		// stat's device first; the mount's only when it differs.
		if len(keys) == 0 || keys[0] != want || len(keys) > 2 {
			t.Errorf("socketInodes(%s): got %+v, want %+v first", p, keys, want)
		}
	}
	for _, p := range []string{file, dir, filepath.Join(dir, "missing"), filepath.Join(file, "x")} {
		if keys, err := socketInodes(p, &mounts); err != nil || len(keys) != 0 {
			t.Errorf("socketInodes(%s): got %+v, %v; want none", p, keys, err)
		}
	}
}
