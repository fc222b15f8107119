//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// ExecEvent is one successful execve() by a process of the jail, as the
// kernel saw it right after the new program replaced the old one.
type ExecEvent struct {
	PID  uint32 // the process (tgid); exec keeps it
	PPID uint32 // its real parent's tgid
	UID  uint32 // real uid after the exec
	Comm string // the new comm: the file's basename, at most 15 bytes
	// Exe is the path given to execve (at most 255 bytes), as the kernel
	// keeps it: a relative path stays relative, fexecve gives /dev/fd/N.
	// For a script it is the script, not its interpreter.
	Exe string
	// Argv is the new program's argument vector, cut after 512 bytes.
	Argv []string
	// ArgvTruncated says the argument block was longer than what Argv holds
	// (its last element may then be cut short).
	ArgvTruncated bool
}

// ErrExecWatched means the object already has an ExecWatcher: one ring
// buffer, one reader.
var ErrExecWatched = errors.New("bpf: exec events already watched")

// execPoll is how often a waiting Next looks at the ring buffer. The hook
// wakes the reader only when a quarter of the buffer waits (a wakeup per
// event costs ~14 us per exec on a VM), so this bounds an event's latency.
const execPoll = 100 * time.Millisecond

// ExecWatcher reports the execs of one jail. Its hook runs on every exec of
// the host but emits only for the jail's cgroup (and its descendants).
type ExecWatcher struct {
	objs       *Objects
	dropHook   func() error // gives back the exec hook
	rd         *ringbuf.Reader
	dropCgroup func() error   // gives back the jail_cgroup slot
	rec        ringbuf.Record // Next's buffer, reused

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	closing  bool // Close was called: Next drains, then returns ErrClosed
	released bool // the reader is closed
}

// WatchExec starts reporting every exec in the cgroup at cgroupPath (a
// cgroup2 directory) and below it. Events are buffered in the kernel (256
// KiB, about 320 events) until Next reads them; when the buffer is full,
// further events are dropped and counted as exec_dropped in Stats. One
// watcher per Objects at a time. If the object is attached (Attach), the
// cgroup must be the one it was attached to.
func (o *Objects) WatchExec(cgroupPath string) (*ExecWatcher, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.exec != nil {
		return nil, ErrExecWatched
	}
	rd, err := ringbuf.NewReader(o.objs.Execs)
	if err != nil {
		return nil, fmt.Errorf("open exec event buffer: %w", err)
	}
	// Points the hook's filter at the cgroup.
	release, err := o.useJailCgroup(cgroupPath)
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("exec events: %w", err)
	}
	drop, err := o.useExecHook()
	if err != nil {
		release()
		rd.Close()
		return nil, err
	}
	if err := o.objs.ExecEvents.Set(uint32(1)); err != nil {
		drop()
		release()
		rd.Close()
		return nil, fmt.Errorf("exec events: switch on: %w", err)
	}
	o.exec = &ExecWatcher{objs: o, dropHook: drop, rd: rd, dropCgroup: release}
	return o.exec, nil
}

func (o *Objects) attachExec() (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: o.objs.JailExec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return nil, fmt.Errorf("attach exec hook (tp_btf/sched_process_exec): %w", err)
	}
	return l, nil
}

// useExecHook attaches the exec hook unless it is already, and returns the
// function that gives it back: the last one detaches it.
func (o *Objects) useExecHook() (release func() error, err error) {
	o.hookMu.Lock()
	defer o.hookMu.Unlock()
	if o.execUsers == 0 {
		l, err := o.attachExec()
		if err != nil {
			return nil, err
		}
		o.execLink = l
	}
	o.execUsers++
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			o.hookMu.Lock()
			defer o.hookMu.Unlock()
			o.execUsers--
			if o.execUsers > 0 {
				return
			}
			if e := o.execLink.Close(); e != nil {
				err = fmt.Errorf("detach exec hook: %w", e)
			}
			o.execLink = nil
		})
		return err
	}, nil
}

// ProbeExec attaches and immediately detaches the exec hook and opens its
// ring buffer (`ebpfjail check`). With no cgroup set it emits nothing.
func (o *Objects) ProbeExec() error {
	drop, err := o.useExecHook()
	if err != nil {
		return err
	}
	if err := drop(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.exec != nil {
		return nil // the buffer has its reader already
	}
	rd, err := ringbuf.NewReader(o.objs.Execs)
	if err != nil {
		return fmt.Errorf("open exec event buffer: %w", err)
	}
	return rd.Close()
}

// Next blocks until the next exec event. After Close it returns the events
// still buffered, then an error that is ringbuf.ErrClosed (os.ErrClosed).
// Call it from one goroutine.
func (w *ExecWatcher) Next() (ExecEvent, error) {
	for {
		w.mu.Lock()
		closing, released := w.closing, w.released
		w.mu.Unlock()
		if released {
			return ExecEvent{}, ringbuf.ErrClosed
		}
		if closing {
			// The hook is detached: whatever is in the ring is all.
			w.rd.SetDeadline(time.Now())
		} else {
			w.rd.SetDeadline(time.Now().Add(execPoll))
		}
		err := w.rd.ReadInto(&w.rec)
		switch {
		case err == nil:
			return decodeExec(w.rec.RawSample)
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
			if closing {
				w.release()
				return ExecEvent{}, ringbuf.ErrClosed
			}
		case errors.Is(err, ringbuf.ErrClosed): // Objects.Close released it
			return ExecEvent{}, ringbuf.ErrClosed
		default:
			return ExecEvent{}, fmt.Errorf("read exec event: %w", err)
		}
	}
}

// Close detaches the hook and gives back the cgroup (cleared unless the
// unix guard still uses it). Call Next until it returns
// ErrClosed to get the events still buffered (the last execs of a jail that
// just ended); the buffer is released then, or by Objects.Close.
func (w *ExecWatcher) Close() error {
	w.closeOnce.Do(func() {
		var errs []error
		// The hook may stay attached (for process identity): no more events.
		if err := w.objs.objs.ExecEvents.Set(uint32(0)); err != nil {
			errs = append(errs, fmt.Errorf("exec events: switch off: %w", err))
		}
		if err := w.dropHook(); err != nil {
			errs = append(errs, err)
		}
		if err := w.dropCgroup(); err != nil {
			errs = append(errs, fmt.Errorf("exec events: %w", err))
		}
		w.mu.Lock()
		w.closing = true
		released := w.released
		w.mu.Unlock()
		if !released {
			// Wake a waiting Next now rather than at its next poll.
			if err := w.rd.Flush(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, fmt.Errorf("flush exec event buffer: %w", err))
			}
		}
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}

// release closes the reader and frees the object for another watcher.
func (w *ExecWatcher) release() {
	w.mu.Lock()
	done := w.released
	w.released = true
	w.mu.Unlock()
	if done {
		return
	}
	w.rd.Close()
	w.objs.mu.Lock()
	if w.objs.exec == w {
		w.objs.exec = nil
	}
	w.objs.mu.Unlock()
}

// Offsets into a ring buffer record, from the generated mirror of struct
// exec_event (TestStructSizesMatchC pins it to the C side).
var (
	execEventSize = int(unsafe.Sizeof(jailExecEvent{}))
	offPPID       = unsafe.Offsetof(jailExecEvent{}.Ppid)
	offUID        = unsafe.Offsetof(jailExecEvent{}.Uid)
	offArgsLen    = unsafe.Offsetof(jailExecEvent{}.ArgsLen)
	offArgsSize   = unsafe.Offsetof(jailExecEvent{}.ArgsSize)
	offComm       = unsafe.Offsetof(jailExecEvent{}.Comm)
	offFilename   = unsafe.Offsetof(jailExecEvent{}.Filename)
	offArgs       = unsafe.Offsetof(jailExecEvent{}.Args)
)

// decodeExec reads a record field by field (no reflection: it runs once
// per exec).
func decodeExec(raw []byte) (ExecEvent, error) {
	if len(raw) < execEventSize {
		return ExecEvent{}, fmt.Errorf("exec event: %d bytes, want %d", len(raw), execEventSize)
	}
	u32 := func(off uintptr) uint32 { return binary.NativeEndian.Uint32(raw[off:]) }
	argsLen, argsSize := u32(offArgsLen), u32(offArgsSize)
	args := raw[offArgs:execEventSize]
	return ExecEvent{
		PID:           u32(0),
		PPID:          u32(offPPID),
		UID:           u32(offUID),
		Comm:          cString(raw[offComm:offFilename]),
		Exe:           cString(raw[offFilename:offArgs]),
		Argv:          splitArgs(args[:min(int(argsLen), len(args))]),
		ArgvTruncated: argsSize > argsLen,
	}, nil
}

// splitArgs splits the kernel's argv block: NUL-terminated strings back to
// back; the last one has no NUL when the block was cut.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = string(p)
	}
	return argv
}

// cString returns the bytes of a NUL-terminated C char array.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
