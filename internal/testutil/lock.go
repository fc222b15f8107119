package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// lockDir holds the lock files of test hosts' slots and of Lock.
const lockDir = "/run/lock"

// Lock takes the machine-wide lock name, shared or exclusive, waiting as
// long as another test binary holds it the other way. Test runs that share
// a machine use it for what only one of them may touch at a time (a fixed
// path, the jails of dead supervisors). The lock is an flock on a file in
// /run/lock, so it dies with the process; it is released by the returned
// function or, at the latest, when the test ends.
func Lock(tb testing.TB, name string, shared bool) (unlock func()) {
	tb.Helper()
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		tb.Fatalf("create lock directory: %v", err)
	}
	path := filepath.Join(lockDir, "ebpfjail-test-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatalf("open lock file: %v", err)
	}
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		tb.Logf("waiting for %s: another test run holds it", path)
		err = flockRetry(f, how)
	}
	if err != nil {
		f.Close()
		tb.Fatalf("lock %s: %v", path, err)
	}
	var once sync.Once
	unlock = func() { once.Do(func() { f.Close() }) }
	tb.Cleanup(unlock)
	return unlock
}

func flockRetry(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// sweepLock guards the jails of dead supervisors: every ebpfjail run sweeps
// them when it starts, so a test that kills its supervisor on purpose and
// then checks what --cleanup does would lose its jail to another test run's
// ebpfjail.
const sweepLock = "sweep"

// sweepOwned is set while this process holds sweepLock exclusively: its own
// ebpfjail runs then take nothing more (a second flock by the same process
// on another descriptor would wait for itself).
var sweepOwned atomic.Bool

// SweepShared is taken around every ebpfjail run a test starts; see
// SweepExclusive. Without root it takes nothing: such a run sweeps nothing.
func SweepShared(tb testing.TB) (release func()) {
	tb.Helper()
	if sweepOwned.Load() || os.Geteuid() != 0 {
		return func() {}
	}
	return Lock(tb, sweepLock, true)
}

// SweepExclusive is for a test that leaves a jail of a dead supervisor for
// --cleanup on purpose: until the test ends no ebpfjail of another test run
// that uses SweepShared starts, and so none sweeps that jail away.
func SweepExclusive(tb testing.TB) {
	tb.Helper()
	if sweepOwned.Load() {
		tb.Fatalf("take the %s lock: this process holds it already", sweepLock)
	}
	unlock := Lock(tb, sweepLock, false)
	sweepOwned.Store(true)
	tb.Cleanup(func() {
		sweepOwned.Store(false)
		unlock()
	})
}
