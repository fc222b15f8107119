//go:build linux

package bpf

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// execEvents collects a watcher's events until it is closed.
func execEvents(t *testing.T, w *ExecWatcher) <-chan ExecEvent {
	t.Helper()
	ch := make(chan ExecEvent, 64)
	go func() {
		defer close(ch)
		for {
			ev, err := w.Next()
			if err != nil {
				if !errors.Is(err, ringbuf.ErrClosed) {
					t.Errorf("next exec event: %v", err)
				}
				return
			}
			ch <- ev
		}
	}()
	return ch
}

// startIn runs a command to completion, inside the cgroup at dir if dir is
// not empty, and returns its pid.
func startIn(t *testing.T, dir string, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	if dir != "" {
		cg, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return cmd.Process.Pid
}

// waitExec returns the first event whose argv has arg, failing the test on
// any event whose argv has one of never.
func waitExec(t *testing.T, ch <-chan ExecEvent, arg string, never ...string) ExecEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watcher closed before an exec with %q", arg)
			}
			for _, n := range never {
				if slices.Contains(ev.Argv, n) {
					t.Errorf("event from outside the jail: %+v", ev)
				}
			}
			if slices.Contains(ev.Argv, arg) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no exec event with %q within 5s", arg)
		}
	}
}

func TestPrivilegedExecEventsComeOnlyFromTheJail(t *testing.T) {
	k := newKernelJail(t)
	w, err := k.objs.WatchExec(k.cgroup)
	if err != nil {
		t.Fatalf("watch exec: %+v", err)
	}
	defer w.Close()
	if _, err := k.objs.WatchExec(k.cgroup); !errors.Is(err, ErrExecWatched) {
		t.Errorf("second watcher: got %v, want ErrExecWatched", err)
	}
	ch := execEvents(t, w)

	// Outside first: the hook runs synchronously in execve, so had it
	// emitted this one, it would be read before the jailed one.
	startIn(t, "", "/bin/true", "outside-arg")
	pid := startIn(t, k.cgroup, "sh", "-c", "exec /bin/true marker-arg")

	sh := waitExec(t, ch, "exec /bin/true marker-arg", "outside-arg")
	if sh.PID != uint32(pid) || sh.PPID != uint32(os.Getpid()) || sh.Comm != "sh" ||
		filepath.Base(sh.Exe) != "sh" || !slices.Equal(sh.Argv, []string{"sh", "-c", "exec /bin/true marker-arg"}) {
		t.Errorf("sh exec: got %+v, want pid %d ppid %d", sh, pid, os.Getpid())
	}
	ev := waitExec(t, ch, "marker-arg", "outside-arg")
	want := ExecEvent{PID: uint32(pid), PPID: uint32(os.Getpid()), UID: 0, Comm: "true",
		Exe: "/bin/true", Argv: []string{"/bin/true", "marker-arg"}}
	if !equalExec(ev, want) {
		t.Errorf("true exec: got %+v, want %+v", ev, want)
	}

	// A sub-cgroup of the jail is still the jail, as for the cgroup programs.
	sub := filepath.Join(k.cgroup, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	defer unix.Rmdir(sub)
	startIn(t, sub, "/bin/true", "sub-arg")
	if ev := waitExec(t, ch, "sub-arg", "outside-arg"); ev.ArgvTruncated {
		t.Errorf("sub-cgroup exec: truncated: %+v", ev)
	}

	// A long argv is cut at 512 bytes and says so.
	startIn(t, k.cgroup, "/bin/true", "long-arg", strings.Repeat("a", 1000))
	ev = waitExec(t, ch, "long-arg", "outside-arg")
	if cut := 512 - len("/bin/true\x00long-arg\x00"); !ev.ArgvTruncated || len(ev.Argv) != 3 || ev.Argv[2] != strings.Repeat("a", cut) {
		t.Errorf("long argv: got truncated=%v argv %q, want the third cut to %d bytes", ev.ArgvTruncated, ev.Argv, cut)
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch { // drains, then ends: Next returned ErrClosed
	}
	if _, err := w.Next(); !errors.Is(err, ringbuf.ErrClosed) {
		t.Errorf("next after close: got %v, want ErrClosed", err)
	}
	st, err := k.objs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st["exec_dropped"] != 0 {
		t.Errorf("exec_dropped: got %d", st["exec_dropped"])
	}

	// Closed, the object can be watched again.
	w2, err := k.objs.WatchExec(k.cgroup)
	if err != nil {
		t.Fatalf("watch again: %v", err)
	}
	w2.Close()
}

// The last execs of a jail are not lost to Close: Next returns what is
// buffered, then ErrClosed.
func TestPrivilegedExecCloseDrainsTheBuffer(t *testing.T) {
	k := newKernelJail(t)
	w, err := k.objs.WatchExec(k.cgroup)
	if err != nil {
		t.Fatalf("watch exec: %+v", err)
	}
	for i := range 3 {
		startIn(t, k.cgroup, "/bin/true", "last-"+strconv.Itoa(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	startIn(t, k.cgroup, "/bin/true", "after-close")
	var got []string
	for {
		ev, err := w.Next()
		if errors.Is(err, ringbuf.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Argv[len(ev.Argv)-1])
	}
	if want := []string{"last-0", "last-1", "last-2"}; !slices.Equal(got, want) {
		t.Errorf("after close: got %q, want %q", got, want)
	}
}

func TestPrivilegedProbeExec(t *testing.T) {
	k := newKernelJail(t)
	if err := k.objs.ProbeExec(); err != nil {
		t.Fatalf("probe exec: %+v", err)
	}
}

func equalExec(a, b ExecEvent) bool {
	return a.PID == b.PID && a.PPID == b.PPID && a.UID == b.UID && a.Comm == b.Comm &&
		a.Exe == b.Exe && slices.Equal(a.Argv, b.Argv) && a.ArgvTruncated == b.ArgvTruncated
}

// BenchmarkExecInJail starts /bin/true in the jail's cgroup with and
// without the exec hook (and events read). The wall time is fork+exec+wait;
// bpf-ns/run is the hook's own run time from the kernel's BPF statistics:
// in the jail it emits an event, every other exec of the host pays only the
// cgroup test.
func BenchmarkExecInJail(b *testing.B) {
	k := newKernelJail(b)
	cg, err := os.Open(k.cgroup)
	if err != nil {
		b.Fatal(err)
	}
	defer cg.Close()
	run := func(b *testing.B, inJail bool) {
		for b.Loop() {
			cmd := exec.Command("/bin/true")
			if inJail {
				cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
			}
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no-hook", func(b *testing.B) { run(b, true) })
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Fatalf("enable BPF run time statistics: %v", err)
	}
	defer stats.Close()
	for _, inJail := range []bool{true, false} {
		name := "hook-in-jail"
		if !inJail {
			name = "hook-outside-jail"
		}
		b.Run(name, func(b *testing.B) {
			w, err := k.objs.WatchExec(k.cgroup)
			if err != nil {
				b.Fatal(err)
			}
			ch := make(chan struct{})
			go func() {
				defer close(ch)
				for {
					if _, err := w.Next(); err != nil {
						return
					}
				}
			}()
			before := progStats(b, k.objs.objs.JailExec)
			run(b, inJail)
			after := progStats(b, k.objs.objs.JailExec)
			w.Close()
			<-ch
			if n := after.count - before.count; n > 0 {
				b.ReportMetric(float64(after.ns-before.ns)/float64(n), "bpf-ns/run")
			}
		})
	}
}

type runStats struct{ ns, count uint64 }

func progStats(b *testing.B, p *ebpf.Program) runStats {
	st, err := p.Stats()
	if err != nil {
		b.Fatal(err)
	}
	return runStats{uint64(st.Runtime), st.RunCount}
}
