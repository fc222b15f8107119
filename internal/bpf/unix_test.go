package bpf

import (
	"slices"
	"strings"
	"testing"
	"unsafe"
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
	for _, name := range unixPrograms {
		if spec.Programs[name] == nil {
			t.Errorf("no program %s in the object", name)
		}
	}
}
