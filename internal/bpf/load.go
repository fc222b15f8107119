package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
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
	// unixErr is why the unix programs were not loaded (a kernel before
	// 6.7 has no hook for them), nil when they were.
	unixErr error

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
	if err := probeUnixHooks(); err != nil {
		if !unsupported(err) {
			return nil, fmt.Errorf("probe unix socket hooks: %w", err)
		}
		o.unixErr = fmt.Errorf("%w: this kernel has no cgroup hook for unix sockets (Linux 6.7+)", ebpf.ErrNotSupported)
		err = loadWithout(spec, &o.objs, unixPrograms)
		if err != nil {
			o.objs.Close()
			return nil, fmt.Errorf("load jail object: %w", err)
		}
		return o, nil
	}
	if err := spec.LoadAndAssign(&o.objs, nil); err != nil {
		return nil, fmt.Errorf("load jail object: %w", err)
	}
	return o, nil
}

// unsupported reports whether err says the kernel lacks a program or attach
// type (rather than, say, a permission error).
func unsupported(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// loadWithout loads spec into objs except for the programs named in skip,
// whose fields stay nil. On error the caller closes objs.
func loadWithout(spec *ebpf.CollectionSpec, objs *jailObjects, skip []string) error {
	for _, name := range skip {
		delete(spec.Programs, name)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return err
	}
	defer coll.Close() // closes nothing once everything is assigned
	if err := coll.Assign(&objs.jailMaps); err != nil {
		return err
	}
	if err := coll.Assign(&objs.jailVariables); err != nil {
		return err
	}
	// jailPrograms, generated, names every program: Assign would refuse the
	// missing ones, so take the loaded ones field by field.
	progs := reflect.ValueOf(&objs.jailPrograms).Elem()
	for i := range progs.NumField() {
		if p := coll.DetachProgram(progs.Type().Field(i).Tag.Get("ebpf")); p != nil {
			progs.Field(i).Set(reflect.ValueOf(p))
		}
	}
	return nil
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
	// optional programs are left out, and reported by Links.Missing, when
	// the kernel cannot load or attach them; a jail runs without them.
	optional bool
}

// attachments are the cgroup programs only; the exec hook is a tracing
// program with its own attach (WatchExec, ProbeExec).
func (o *Objects) attachments() []attachment {
	p := &o.objs.jailPrograms
	// sock_create first: from then on no raw socket can be made, before a
	// single connect is steered.
	return []attachment{
		{"sock_create", p.JailSockCreate, ebpf.AttachCGroupInetSockCreate, false},
		{"sock_release", p.JailSockRelease, ebpf.AttachCgroupInetSockRelease, false},
		{"sockops", p.JailSockops, ebpf.AttachCGroupSockOps, false},
		{"connect4", p.JailConnect4, ebpf.AttachCGroupInet4Connect, false},
		{"connect6", p.JailConnect6, ebpf.AttachCGroupInet6Connect, false},
		{"sendmsg4", p.JailSendmsg4, ebpf.AttachCGroupUDP4Sendmsg, false},
		{"sendmsg6", p.JailSendmsg6, ebpf.AttachCGroupUDP6Sendmsg, false},
		{"recvmsg4", p.JailRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg, false},
		{"recvmsg6", p.JailRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg, false},
		{"getpeername4", p.JailGetpeer4, ebpf.AttachCgroupInet4GetPeername, false},
		{"getpeername6", p.JailGetpeer6, ebpf.AttachCgroupInet6GetPeername, false},
		// Linux 6.7+: without them a jail still runs, with the unix side
		// door open (ProbeAttach marks them Optional for `ebpfjail check`).
		{"connect_unix", p.JailConnectUnix, ebpf.AttachCgroupUnixConnect, true},
		{"sendmsg_unix", p.JailSendmsgUnix, ebpf.AttachCgroupUnixSendmsg, true},
	}
}

// Links are the programs attached to one cgroup.
type Links struct {
	links   []link.Link
	pinned  string
	missing []string
}

// Attach attaches every program to the cgroup at path. An optional program
// the kernel cannot load or attach is left out and named by Missing. On
// error nothing stays attached.
func (o *Objects) Attach(cgroupPath string) (*Links, error) {
	ls := &Links{}
	for _, a := range o.attachments() {
		if a.prog == nil && a.optional { // not loaded (o.unixErr)
			ls.missing = append(ls.missing, a.name)
			continue
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: a.typ, Program: a.prog})
		if err != nil {
			if a.optional && unsupported(err) {
				ls.missing = append(ls.missing, a.name)
				continue
			}
			ls.Close()
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
		ls.links = append(ls.links, l)
	}
	return ls, nil
}

// Missing names the optional programs this kernel could not attach
// ("connect_unix", "sendmsg_unix" before Linux 6.7): the jail runs without
// them.
func (ls *Links) Missing() []string {
	return ls.missing
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
	// Optional programs do not stop a jail: Attach leaves them out when Err
	// says the kernel lacks them (errors.Is(Err, ebpf.ErrNotSupported)).
	Optional bool
}

// ProbeAttach attaches and immediately detaches each program, one at a
// time, to the cgroup at path, reporting each.
func (o *Objects) ProbeAttach(cgroupPath string) []ProbeResult {
	var res []ProbeResult
	for _, a := range o.attachments() {
		if a.prog == nil && a.optional {
			res = append(res, ProbeResult{Name: a.name, Err: o.unixErr, Optional: true})
			continue
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: a.typ, Program: a.prog})
		if err == nil {
			err = l.Close()
		} else if a.optional && unsupported(err) {
			err = fmt.Errorf("%w: %w", ebpf.ErrNotSupported, err)
		}
		res = append(res, ProbeResult{Name: a.name, Err: err, Optional: a.optional})
	}
	return res
}
