package mounts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOfFindsCgroup2InHybridLayout(t *testing.T) {
	table := `tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
bpf /sys/fs/b\040pf bpf rw 0 0
`
	of := func(r string, fstype string) string {
		got, err := Of(strings.NewReader(r), fstype)
		if err != nil {
			t.Fatalf("Of(%s): %v", fstype, err)
		}
		return got
	}
	if got, want := of(table, "cgroup2"), "/sys/fs/cgroup/unified"; got != want {
		t.Errorf("cgroup2: got %q, want %q", got, want)
	}
	if got, want := of(table, "bpf"), "/sys/fs/b pf"; got != want {
		t.Errorf("bpf: got %q, want %q", got, want)
	}
	if got := of("proc /proc proc rw 0 0\n", "cgroup2"); got != "" {
		t.Errorf("no cgroup2: got %q, want empty", got)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup":       "/sys/fs/cgroup",
		`/mnt/a\040b`:          "/mnt/a b",
		`/mnt/tab\011x\134y`:   "/mnt/tab\tx\\y",
		`/mnt/nl\012z`:         "/mnt/nl\nz",
		`/mnt/short\04`:        `/mnt/short\04`,
		`/mnt/not\0octal\999x`: `/mnt/not\0octal\999x`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestCgroup2IsACgroup2Root(t *testing.T) {
	mnt, err := Cgroup2()
	if err != nil {
		t.Fatal(err)
	}
	if mnt == "" {
		t.Skip("skipping: no cgroup2 mount")
	}
	if _, err := os.Stat(filepath.Join(mnt, "cgroup.controllers")); err != nil {
		t.Errorf("Cgroup2() = %s: not a cgroup2 root: %v", mnt, err)
	}
}

func TestParseInfoReadsIDsDevicesRootsAndEscapedPoints(t *testing.T) {
	got := ParseInfo(`22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
23 1 259:3 /engine /srv/engine\040dir rw - ext4 /dev/x rw
bad line
24 1 x:1 / /y rw - tmpfs tmpfs rw
`)
	want := []Info{
		{ID: 22, Major: 0, Minor: 21, Root: "/", Point: "/run"},
		{ID: 23, Major: 259, Minor: 3, Root: "/engine", Point: "/srv/engine dir"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
