//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachIdentity attaches the hooks that let connect() record which
// program a process runs: exec (what each exec loaded), fork (a child runs
// its parent's) and exit (forget the process). They are host-wide BTF
// tracepoints that act for the jail's cgroup only, and cost every other
// fork, exec and exit of the host one cgroup test. Without them (no BTF
// tracepoints: a kernel without BTF or before 5.5) a jail runs, and Origin
// says the kernel saw no exec ([origin.ExeUnseen]): err says why.
func (o *Objects) attachIdentity() (links []link.Link, dropExec func() error, err error) {
	p := &o.objs.jailPrograms
	for _, h := range []struct {
		name string
		prog *ebpf.Program
	}{{"sched_process_fork", p.JailFork}, {"sched_process_exit", p.JailExit}} {
		l, err := link.AttachTracing(link.TracingOptions{Program: h.prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return nil, nil, fmt.Errorf("%w: attach identity hook (tp_btf/%s): %w", ebpf.ErrNotSupported, h.name, err)
		}
		links = append(links, l)
	}
	drop, err := o.useExecHook()
	if err != nil {
		for _, l := range links {
			l.Close()
		}
		return nil, nil, fmt.Errorf("%w: identity: %w", ebpf.ErrNotSupported, err)
	}
	return links, drop, nil
}

// Identity is nil when the identity hooks are attached, so Origin.Exe is
// what the process ran at connect(); otherwise it says why not (wrapping
// ebpf.ErrNotSupported) and every Origin has ExeFrom [origin.ExeUnseen].
func (ls *Links) Identity() error {
	return ls.identityErr
}

// ProbeIdentity attaches and detaches the identity hooks (`ebpfjail
// check`).
func (o *Objects) ProbeIdentity() error {
	links, drop, err := o.attachIdentity()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach identity hook: %w", err))
		}
	}
	if err := drop(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
