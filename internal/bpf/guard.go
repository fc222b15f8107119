//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The unix guard: two BPF LSM programs (lsm/unix_stream_connect,
// lsm/unix_may_send in bpf/jail.c) that refuse a jailed task the unix
// sockets DenyUnix lists once the kernel has resolved the address to a
// socket, so no spelling of a path gets past them. They are host-wide hooks
// that act only for tasks in the jail_cgroup slot's cgroup (Attach sets
// it), and optional: a kernel without a working BPF LSM (CONFIG_BPF_LSM,
// "bpf" in its lsm= list, BPF trampolines) runs the jail without them and
// Links.UnixGuard says why.

// guardPrograms are the guard's programs, left out of the load when
// probeUnixGuard fails.
var guardPrograms = []string{jailProgJailUnixStreamConnect, jailProgJailUnixMaySend}

// guardNames name the guard's programs in errors.
var guardNames = []string{"lsm_unix_stream_connect", "lsm_unix_may_send"}

// probeUnixGuard loads a minimal LSM program on unix_may_send: a kernel
// without CONFIG_BPF_LSM has no such hook to attach to, and one that cannot
// build BPF trampolines refuses every LSM program. Finding the hook decodes
// the kernel's BTF, so it goes through cache, which the load shares. A
// variable so tests can pretend such a kernel.
var probeUnixGuard = func(cache *btf.Cache) error {
	coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{
		Programs: map[string]*ebpf.ProgramSpec{"probe": {
			Name:       "probe",
			Type:       ebpf.LSM,
			AttachType: ebpf.AttachLSMMac,
			AttachTo:   "unix_may_send",
			Instructions: asm.Instructions{
				asm.LoadImm(asm.R0, 0, asm.DWord),
				asm.Return(),
			},
			License: "GPL",
		}},
	}, ebpf.CollectionOptions{Cache: cache})
	if err != nil {
		return err
	}
	coll.Close()
	return nil
}

// attachGuard attaches the guard's programs and checks that the kernel
// runs them. Any failure is returned wrapping ebpf.ErrNotSupported, with
// nothing left attached.
func (o *Objects) attachGuard() ([]link.Link, error) {
	if o.guardErr != nil {
		return nil, o.guardErr
	}
	var links []link.Link
	closeAll := func() {
		for _, l := range links {
			l.Close()
		}
	}
	p := &o.objs.jailPrograms
	for i, prog := range []*ebpf.Program{p.JailUnixStreamConnect, p.JailUnixMaySend} {
		l, err := link.AttachLSM(link.LSMOptions{Program: prog})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%w: attach %s: %w", ebpf.ErrNotSupported, guardNames[i], err)
		}
		links = append(links, l)
	}
	if err := o.guardRuns(); err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: %w", ebpf.ErrNotSupported, err)
	}
	return links, nil
}

// Bits of guard_probe_seen (bpf/jail.c).
const (
	guardProbeConnect = 1
	guardProbeSend    = 2
)

// errGuardIdle says the guard's programs attached but never ran.
var errGuardIdle = errors.New("the BPF LSM programs attach but do not run: the kernel's LSM list (/sys/kernel/security/lsm, lsm= on its command line) lacks bpf")

// guardRuns checks that the attached guard programs run: a kernel built
// with the BPF LSM but without "bpf" in its active LSM list loads and
// attaches them and never calls them. It has this process trigger both
// hooks (a datagram send between the ends of a socketpair, a stream
// connect to an autobound abstract socket), which the programs record for
// guard_probe_tgid only; this process is not in the jail, so nothing is
// refused.
func (o *Objects) guardRuns() error {
	o.probeMu.Lock()
	defer o.probeMu.Unlock()
	v := &o.objs.jailVariables
	if err := v.GuardProbeSeen.Set(uint32(0)); err != nil {
		return fmt.Errorf("reset guard self-test: %w", err)
	}
	if err := v.GuardProbeTgid.Set(uint32(os.Getpid())); err != nil {
		return fmt.Errorf("start guard self-test: %w", err)
	}
	err := triggerUnixHooks()
	if e := v.GuardProbeTgid.Set(uint32(0)); e != nil && err == nil {
		err = fmt.Errorf("stop guard self-test: %w", e)
	}
	if err != nil {
		return err
	}
	var seen uint32
	if err := v.GuardProbeSeen.Get(&seen); err != nil {
		return fmt.Errorf("read guard self-test: %w", err)
	}
	if seen != guardProbeConnect|guardProbeSend {
		return fmt.Errorf("%w (self-test saw %#x)", errGuardIdle, seen)
	}
	return nil
}

// triggerUnixHooks makes the kernel call security_unix_may_send and
// security_unix_stream_connect once each.
func triggerUnixHooks() error {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("guard self-test: socketpair: %w", err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	if _, err := unix.Write(pair[0], []byte{0}); err != nil {
		return fmt.Errorf("guard self-test: send: %w", err)
	}

	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("guard self-test: socket: %w", err)
	}
	defer unix.Close(ln)
	// An empty name autobinds: a fresh abstract name, nothing on disk.
	if err := unix.Bind(ln, &unix.SockaddrUnix{}); err != nil {
		return fmt.Errorf("guard self-test: bind: %w", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		return fmt.Errorf("guard self-test: listen: %w", err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return fmt.Errorf("guard self-test: getsockname: %w", err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("guard self-test: socket: %w", err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, sa); err != nil {
		return fmt.Errorf("guard self-test: connect: %w", err)
	}
	return nil
}

// ProbeUnixGuard attaches the unix guard, checks that the kernel runs it,
// and detaches it (`ebpfjail check`); if Attach has attached it already, it
// only checks that it runs. An error wrapping ebpf.ErrNotSupported means
// this kernel runs jails without it.
func (o *Objects) ProbeUnixGuard() error {
	o.cgMu.Lock()
	on := o.guardOn > 0
	o.cgMu.Unlock()
	if on {
		if err := o.guardRuns(); err != nil {
			return fmt.Errorf("%w: %w", ebpf.ErrNotSupported, err)
		}
		return nil
	}
	links, err := o.attachGuard()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach unix guard: %w", err))
		}
	}
	return errors.Join(errs...)
}
