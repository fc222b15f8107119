package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Config holds the ports the programs steer to. They are compiled into the
// object as constants before it is loaded, so one object serves one jail.
type Config struct {
	ListenPort4 uint16 // transparent listener on 127.0.0.1
	ListenPort6 uint16 // transparent listener on [::1]
	DNSPort4    uint16 // DNS shim (UDP) on 127.0.0.1
	DNSPort6    uint16 // DNS shim (UDP) on [::1]
}

// Objects is one loaded copy of the jail object.
type Objects struct {
	objs jailObjects

	mu   sync.Mutex
	exec *ExecWatcher // the one reader of the execs ring buffer, if any
}

// Load loads the object with cfg's ports. A verifier rejection is returned
// as an error wrapping *ebpf.VerifierError (print it with %+v for the log).
func Load(cfg Config) (*Objects, error) {
	for _, p := range []uint16{cfg.ListenPort4, cfg.ListenPort6, cfg.DNSPort4, cfg.DNSPort6} {
		if p == 0 {
			return nil, errors.New("load jail object: every port must be set")
		}
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	spec, err := loadJail()
	if err != nil {
		return nil, fmt.Errorf("read jail object: %w", err)
	}
	for name, v := range map[string]uint16{
		jailVarListenPort4: cfg.ListenPort4,
		jailVarListenPort6: cfg.ListenPort6,
		jailVarDnsPort4:    cfg.DNSPort4,
		jailVarDnsPort6:    cfg.DNSPort6,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	o := &Objects{}
	if err := spec.LoadAndAssign(&o.objs, nil); err != nil {
		return nil, fmt.Errorf("load jail object: %w", err)
	}
	return o, nil
}

// Close releases the maps and programs, and an ExecWatcher's buffer.
// Attached cgroup links keep what they need.
func (o *Objects) Close() error {
	o.mu.Lock()
	w := o.exec
	o.mu.Unlock()
	if w != nil {
		w.Close()
		w.release()
	}
	return o.objs.Close()
}

type attachment struct {
	name string // pin file name, also shown by `ebpfjail check`
	prog *ebpf.Program
	typ  ebpf.AttachType
}

// attachments are the cgroup programs only; the exec hook is a tracing
// program with its own attach (WatchExec, ProbeExec).
func (o *Objects) attachments() []attachment {
	p := &o.objs.jailPrograms
	// sock_create first: from then on no raw socket can be made, before a
	// single connect is steered.
	return []attachment{
		{"sock_create", p.JailSockCreate, ebpf.AttachCGroupInetSockCreate},
		{"sock_release", p.JailSockRelease, ebpf.AttachCgroupInetSockRelease},
		{"sockops", p.JailSockops, ebpf.AttachCGroupSockOps},
		{"connect4", p.JailConnect4, ebpf.AttachCGroupInet4Connect},
		{"connect6", p.JailConnect6, ebpf.AttachCGroupInet6Connect},
		{"sendmsg4", p.JailSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"sendmsg6", p.JailSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{"recvmsg4", p.JailRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"recvmsg6", p.JailRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg},
		{"getpeername4", p.JailGetpeer4, ebpf.AttachCgroupInet4GetPeername},
		{"getpeername6", p.JailGetpeer6, ebpf.AttachCgroupInet6GetPeername},
	}
}

// Links are the programs attached to one cgroup.
type Links struct {
	links  []link.Link
	pinned string
}

// Attach attaches every program to the cgroup at path. On error nothing
// stays attached.
func (o *Objects) Attach(cgroupPath string) (*Links, error) {
	ls := &Links{}
	for _, a := range o.attachments() {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: a.typ, Program: a.prog})
		if err != nil {
			ls.Close()
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
		ls.links = append(ls.links, l)
	}
	return ls, nil
}

// Pin pins every link under dir (on a bpffs), so the programs stay attached
// even if this process dies: the jail then fails closed.
func (ls *Links) Pin(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pin directory: %w", err)
	}
	ls.pinned = dir
	for _, l := range ls.links {
		info, err := l.Info()
		if err != nil {
			return fmt.Errorf("read link info: %w", err)
		}
		name := fmt.Sprintf("link%d", info.ID)
		if err := l.Pin(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("pin link %s: %w", name, err)
		}
	}
	return nil
}

// Close detaches every program and removes the pins.
func (ls *Links) Close() error {
	var errs []error
	for _, l := range ls.links {
		if ls.pinned != "" {
			if err := l.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	ls.links = nil
	if ls.pinned != "" {
		if err := RemovePins(ls.pinned); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemovePins removes a pin directory left by a jail, detaching its programs
// once nothing else holds the links. A missing directory is not an error.
func RemovePins(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pins: %w", err)
	}
	return nil
}

// ProbeResult is whether one program could be attached (`ebpfjail check`).
type ProbeResult struct {
	Name string
	Err  error
}

// ProbeAttach attaches and immediately detaches each program, one at a
// time, to the cgroup at path, reporting each.
func (o *Objects) ProbeAttach(cgroupPath string) []ProbeResult {
	var res []ProbeResult
	for _, a := range o.attachments() {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: a.typ, Program: a.prog})
		if err == nil {
			err = l.Close()
		}
		res = append(res, ProbeResult{Name: a.name, Err: err})
	}
	return res
}
