//go:build linux

package jail

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// testPaths puts cgroups and state under scratch roots so a test never
// touches a real jail.
func testPaths(t *testing.T) Paths {
	t.Helper()
	testutil.RequireRoot(t)
	cg, err := Cgroup2Mount(true)
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	root := filepath.Join(cg, "ebpfjail-test-"+filepath.Base(t.TempDir()))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Cleanup(func() {
		// Whatever the test left: kill it and remove the cgroups.
		ents, _ := os.ReadDir(filepath.Join(root, "ebpfjail"))
		for _, e := range ents {
			killCgroup(filepath.Join(root, "ebpfjail", e.Name()), time.Second)
			removeCgroup(filepath.Join(root, "ebpfjail", e.Name()))
		}
		removeCgroup(filepath.Join(root, "ebpfjail"))
		removeCgroup(root)
	})
	return Paths{Cgroup2: root, BPFFS: t.TempDir(), State: state}
}

func nobody(t *testing.T) *User {
	u, err := ResolveUser("nobody", os.Getenv, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func runInJail(t *testing.T, j *Jail, u *User, args ...string) string {
	t.Helper()
	r, w, _ := os.Pipe()
	defer r.Close()
	p, err := j.Start(Command{Args: args, Env: []string{"PATH=/usr/bin:/bin"}, User: u, Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	p.Wait()
	return out.String()
}

func TestPrivilegedCommandIsBornInTheJailAsTheUserWithoutPrivileges(t *testing.T) {
	p := testPaths(t)
	j, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Destroy()
	// An fd the test holds open without close-on-exec must not reach the child.
	leak, _ := os.Open("/dev/null")
	defer leak.Close()
	syscall.Syscall(syscall.SYS_FCNTL, leak.Fd(), syscall.F_SETFD, 0)
	if err := CloseInheritedFDs(); err != nil {
		t.Fatal(err)
	}
	out := runInJail(t, j, nobody(t), "sh", "-c",
		`cat /proc/self/cgroup; grep -E '^(Uid|Gid|NoNewPrivs)' /proc/self/status; ls /proc/self/fd | tr '\n' ' '`)
	if !strings.Contains(out, "0::"+strings.TrimPrefix(j.Cgroup, mustMount(t))) {
		t.Errorf("cgroup: got %q, want the jail %s", out, j.Cgroup)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status: got %q, want a line %q", out, want)
		}
	}
	// ls itself opens one fd (the directory it lists) beyond 0-2.
	fds := strings.Fields(out[strings.LastIndex(out, "\n")+1:])
	if len(fds) > 4 {
		t.Errorf("fds: got %v, want only 0-2 (and ls's own)", fds)
	}
}

func mustMount(t *testing.T) string {
	m, err := Cgroup2Mount(false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPrivilegedChildCannotLeaveTheCgroup(t *testing.T) {
	p := testPaths(t)
	j, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Destroy()
	root := filepath.Join(mustMount(t), "cgroup.procs")
	out := runInJail(t, j, nobody(t), "sh", "-c", "echo $$ > "+root+" && echo ESCAPED; cat /proc/self/cgroup")
	if strings.Contains(out, "ESCAPED") || !strings.Contains(out, j.ID) {
		t.Errorf("got %q, want the write refused and the shell still in %s", out, j.ID)
	}
}

func TestPrivilegedSweepRemovesJailsOfDeadSupervisorsOnly(t *testing.T) {
	p := testPaths(t)
	live, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Destroy()
	dead, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	// Make the second record belong to a process that has exited, with a
	// daemon still running in its cgroup.
	u := nobody(t)
	proc, err := dead.Start(Command{Args: []string{"sleep", "300"}, Env: []string{"PATH=/bin:/usr/bin"}, User: u})
	if err != nil {
		t.Fatal(err)
	}
	go proc.Wait()
	b, _ := os.ReadFile(dead.state)
	b = bytes.Replace(b, []byte(`"pid":`+strconv.Itoa(os.Getpid())), []byte(`"pid":999999999`), 1)
	os.WriteFile(dead.state, b, 0o600)
	os.MkdirAll(dead.PinDir, 0o700)

	swept, err := Sweep(p, testutil.DiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0].ID != dead.ID || swept[0].Procs != 1 {
		t.Fatalf("swept: got %+v, want only %s with 1 process", swept, dead.ID)
	}
	for _, gone := range []string{dead.Cgroup, dead.PinDir, dead.state} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s: still there after sweep (%v)", gone, err)
		}
	}
	if _, err := os.Stat(live.Cgroup); err != nil {
		t.Errorf("live jail: %v", err)
	}
}
