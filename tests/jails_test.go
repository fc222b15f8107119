package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	jailpkg "github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// Tests own only the jails they create: another test run (or a user's
// ebpfjail) may have jails on the machine at the same time. Every ebpfjail
// a test starts carries ownerVar in its environment, naming this test
// binary and the test; the watcher reads it from the supervisor while it
// runs, when its state record appears, and so knows which jails are whose
// even after their supervisors are gone (killed, or crashed half way).
const ownerVar = "EBPFJAIL_E2E_OWNER"

var (
	stateDir = filepath.Join(jailpkg.RunDir, "jails") // <id>.json, written as <id>.json.tmp first
	pinRoot  = "/sys/fs/bpf/ebpfjail"                 // <id>/
	// runToken tells this test binary from another one on the machine.
	runToken = func() string {
		var b [6]byte
		rand.Read(b[:])
		return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}()
)

// owner is the environment entry that marks an ebpfjail run as t's. The
// test binary's own environment carries one for the run as a whole (see
// TestMain), so a run started some other way is still this binary's, and
// every test's check covers it.
func owner(t *testing.T) string {
	watchJails(t)
	return ownerVar + "=" + runToken + " " + t.Name()
}

// ownedRun is the owner value of a run that names no test.
func ownedRun() string { return runToken + " " }

// ebpfjail is exec.Command for the binary under test, marked as t's. It
// takes the shared sweep lock until the test ends (see
// testutil.SweepShared): any ebpfjail that starts sweeps the jails of dead
// supervisors.
func ebpfjail(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	testutil.SweepShared(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), owner(t))
	return cmd
}

// jails maps the id of every jail of this binary's runs to the test that
// made it (or to "" for a run that named none).
var jails struct {
	once  sync.Once
	err   error
	mu    sync.Mutex
	owner map[string]string
}

// watchJails starts, once, the watcher of the state directory. It records
// a jail's owner when the record's temporary file appears: the supervisor
// writes it before it makes the cgroup and then runs for as long as the
// jail does, so the owner is read from a live process.
func watchJails(t *testing.T) {
	t.Helper()
	if err := startWatch(); err != nil {
		t.Fatalf("watch %s: %v", stateDir, err)
	}
}

// startWatch starts the watcher once, as root (nobody else makes jails);
// TestMain calls it so that it sees every jail.
func startWatch() error {
	if os.Geteuid() != 0 {
		return nil
	}
	jails.once.Do(func() {
		jails.owner = map[string]string{}
		jails.err = watch()
	})
	return jails.err
}

func watch() error {
	// The mode ebpfjail gives them; it creates them the same way if needed.
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, stateDir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return err
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
					rescanJails(stateDir, pinRoot)
					continue
				}
				claim(string(bytes.TrimRight(name, "\x00")))
			}
		}
	}()
	return nil
}

// rescanJails claims every jail named in dirs now: records the watcher has
// not seen yet, and cgroups or pins without a record.
func rescanJails(dirs ...string) {
	for _, dir := range dirs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			claim(e.Name())
		}
	}
}

// claim records the owner of the jail a state file, cgroup or pin
// directory name names, if its supervisor is one of this binary's runs.
func claim(name string) {
	id := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".tmp"), ".json"), ".sock")
	pid, _, ok := strings.Cut(id, "-")
	if !ok {
		return
	}
	jails.mu.Lock()
	_, known := jails.owner[id]
	jails.mu.Unlock()
	if known {
		return
	}
	env, err := os.ReadFile("/proc/" + pid + "/environ")
	if err != nil {
		return // gone before it could be asked: not ours to judge
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte(ownerVar+"="))
		if !ok {
			continue
		}
		if test, ok := strings.CutPrefix(string(v), ownedRun()); ok {
			jails.mu.Lock()
			jails.owner[id] = test
			jails.mu.Unlock()
		}
		return
	}
}

// ownedBy lists the jails of test t and its subtests, and of runs that
// named no test.
func ownedBy(t *testing.T, cg string) []string {
	rescanJails(stateDir, pinRoot, filepath.Join(cg, "ebpfjail"))
	jails.mu.Lock()
	defer jails.mu.Unlock()
	var ids []string
	for id, test := range jails.owner {
		if test == "" || test == t.Name() || strings.HasPrefix(test, t.Name()+"/") {
			ids = append(ids, id)
		}
	}
	return ids
}

// noJailsLeft fails if a cgroup, pin directory or state record remains of
// a jail that this test's ebpfjail runs made. Other jails on the machine
// (another test run's, a user's) are not the test's to judge.
func noJailsLeft(t *testing.T) {
	t.Helper()
	watchJails(t)
	cg := testutil.Cgroup2Mount(t)
	var left []string
	for _, id := range ownedBy(t, cg) {
		for _, p := range []string{
			filepath.Join(cg, "ebpfjail", id),
			filepath.Join(pinRoot, id),
			filepath.Join(stateDir, id+".json"),
			filepath.Join(stateDir, id+".json.tmp"),
			filepath.Join(stateDir, id+".sock"),
		} {
			if _, err := os.Lstat(p); err == nil {
				left = append(left, p)
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
