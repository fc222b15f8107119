//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
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
	// guardErr is why the unix guard (the BPF LSM programs) was not loaded,
	// nil when it was. It wraps ebpf.ErrNotSupported.
	guardErr error

	mu      sync.Mutex
	exec    *ExecWatcher // the one reader of the execs ring buffer, if any
	refused bool         // the refused ring buffer has its reader (WatchRefused)

	// The exec hook, attached once for its users (Attach's identity
	// capture, WatchExec's events): a second link would report each exec
	// twice.
	hookMu    sync.Mutex
	execLink  link.Link
	execUsers int

	// The jail_cgroup slot, shared by the unix guard (Attach) and the exec
	// hook (WatchExec): set by the first user, cleared by the last.
	cgMu    sync.Mutex
	cgID    [2]uint64 // dev, ino of the cgroup directory in the slot
	cgUsers int
	closed  bool // Close was called: the map is gone
	// guardOn counts the Links holding the guard's programs attached (an
	// LSM program attaches to its hook once).
	guardOn int
	probeMu sync.Mutex // one guard self-test at a time (guardRuns)
}

// Load loads the object with cfg's ports. A verifier rejection is returned
// as an error wrapping *ebpf.VerifierError (print it with %+v for the log).
func Load(cfg Config) (*Objects, error) {
	return Prepare().Load(cfg)
}

// Prepared is the part of loading the object that does not depend on the
// ports, started ahead by Prepare: decoding the kernel's BTF (about 10 ms
// here, and needed twice: for the exec hook's target and the CO-RE
// relocations), probing the optional hooks (the guard probe alone costs as
// much again when it decodes the BTF itself) and creating the connection
// maps (two preallocated 65536-entry LRU hashes, 4 ms). The jail's
// start-up runs it while it compiles the rule and loads the CA.
type Prepared struct {
	done  chan struct{}
	cache *btf.Cache
	spec  *ebpf.CollectionSpec
	// maps replace the spec's maps of the same name in the load.
	maps map[string]*ebpf.Map
	// err stops the load; unixErr and guardErr leave programs out.
	err, unixErr, guardErr error
	// skip are the programs left out for unixErr.
	skip []string
	// guardDone is closed when guardErr is known (after done, possibly).
	guardDone chan struct{}
	used      bool
}

// preparedMaps are created ahead: the only maps whose creation costs
// anything (the kernel preallocates an LRU hash's entries), and neither
// depends on the ports (which live in .rodata).
var preparedMaps = []string{jailMapOrigByCookie, jailMapOrigByTuple, jailMapExeByExec, jailMapExecOfTgid}

// Prepare starts the port-independent work of a Load in the background.
// Call Load on the result once, or Close to release what it made.
func Prepare() *Prepared {
	p := &Prepared{done: make(chan struct{}), guardDone: make(chan struct{}), cache: btf.NewCache(), maps: map[string]*ebpf.Map{}}
	go func() {
		defer close(p.done)
		p.run()
	}()
	return p
}

func (p *Prepared) run() {
	// The kernel's BTF (for the exec hook's target and the CO-RE
	// relocations) is the longest part and needs nothing else: decode it
	// from the start, alongside reading the object, the probes and the maps.
	kernel := make(chan struct{})
	go func(cache *btf.Cache) {
		defer close(kernel)
		cache.Kernel()
	}(p.cache)
	defer func() { <-kernel }()
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		p.err = fmt.Errorf("remove memlock limit: %w", err)
		close(p.guardDone)
		return
	}
	spec, err := loadJail()
	if err != nil {
		p.err = fmt.Errorf("read jail object: %w", err)
		close(p.guardDone)
		return
	}
	p.spec = spec
	// The guard probe is off the load's critical path: its programs are
	// loaded apart, once it has said yes (see Load).
	go func() {
		defer close(p.guardDone)
		// The guard is optional whatever stops it: the path checks still
		// stand without it, and Links.UnixGuard says it is not there.
		if err := probeUnixGuard(p.cache); err != nil {
			p.guardErr = fmt.Errorf("%w: %w", ebpf.ErrNotSupported, guardLoadError(err))
		}
	}()
	var wg sync.WaitGroup
	var mapErr error
	wg.Go(func() {
		for _, name := range preparedMaps {
			m, err := ebpf.NewMap(spec.Maps[name])
			if err != nil {
				mapErr = fmt.Errorf("create map %s: %w", name, err)
				return
			}
			p.maps[name] = m
		}
	})
	if err := probeUnixHooks(); err != nil {
		if !unsupported(err) {
			p.err = fmt.Errorf("probe unix socket hooks: %w", err)
		}
		p.unixErr = fmt.Errorf("%w: this kernel has no cgroup hook for unix sockets (Linux 6.7+)", ebpf.ErrNotSupported)
		p.skip = append(p.skip, unixPrograms...)
	}
	wg.Wait()
	if p.err == nil {
		p.err = mapErr
	}
}

// Load finishes loading the object with cfg's ports. A Prepared is used
// once: Load consumes it, and Close afterwards does nothing.
func (p *Prepared) Load(cfg Config) (*Objects, error) {
	defer p.Close()
	for _, port := range []uint16{cfg.ListenPort4, cfg.ListenPort6, cfg.DNSPort4, cfg.DNSPort6} {
		if port == 0 {
			return nil, errors.New("load jail object: every port must be set")
		}
	}
	<-p.done
	if p.used {
		return nil, errors.New("load jail object: Prepared used twice")
	}
	p.used = true
	if p.err != nil {
		return nil, p.err
	}
	spec := p.spec
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
	if err := spec.Variables[jailVarNrSocket].Set(uint32(unix.SYS_SOCKET)); err != nil {
		return nil, fmt.Errorf("set %s: %w", jailVarNrSocket, err)
	}
	o := &Objects{unixErr: p.unixErr}
	if err := p.loadGroups(spec, &o.objs, &o.guardErr); err != nil {
		o.objs.Close()
		return nil, fmt.Errorf("load jail object: %w", err)
	}
	return o, nil
}

// loadGroups loads spec into objs: first every map (so every program shares
// them), then the programs in parallel groups, since the verifier's time is
// most of the load and this machine kind has two CPUs; the guard's programs
// are a group of their own, loaded only if the guard probe (still running,
// maybe) passes, whose verdict goes to guardErr. Programs in p.skip stay
// nil. On error the caller closes objs.
func (p *Prepared) loadGroups(spec *ebpf.CollectionSpec, objs *jailObjects, guardErr *error) error {
	mapsOnly := spec.Copy()
	mapsOnly.Programs = map[string]*ebpf.ProgramSpec{}
	maps, err := ebpf.NewCollectionWithOptions(mapsOnly, ebpf.CollectionOptions{Cache: p.cache, MapReplacements: p.maps})
	if err != nil {
		return err
	}
	defer maps.Close() // closes nothing once assigned
	// Every group uses these (cloned); Assign takes them out of maps.Maps.
	shared := make(map[string]*ebpf.Map, len(maps.Maps))
	for name, m := range maps.Maps {
		shared[name] = m
	}
	if err := maps.Assign(&objs.jailMaps); err != nil {
		return err
	}
	if err := maps.Assign(&objs.jailVariables); err != nil {
		return err
	}
	colls, err := p.loadPrograms(spec, p.programGroups(spec), shared, guardErr)
	for _, c := range colls {
		if c != nil {
			defer c.Close() // closes nothing once detached
		}
	}
	if err != nil {
		return err
	}
	// jailPrograms, generated, names every program: Assign would refuse the
	// missing ones, so take the loaded ones field by field.
	progs := reflect.ValueOf(&objs.jailPrograms).Elem()
	for i := range progs.NumField() {
		name := progs.Type().Field(i).Tag.Get("ebpf")
		for _, c := range colls {
			if c == nil {
				continue
			}
			if prog := c.DetachProgram(name); prog != nil {
				progs.Field(i).Set(reflect.ValueOf(prog))
			}
		}
	}
	return nil
}

// programGroups splits spec's programs, but p.skip and the guard's, into
// two groups of about the same size (instructions, which is what the
// verifier's time follows); the guard's programs are the third group.
func (p *Prepared) programGroups(spec *ebpf.CollectionSpec) [][]string {
	skip := map[string]bool{}
	for _, name := range append(p.skip, guardPrograms...) {
		skip[name] = true
	}
	var names []string
	for name := range spec.Programs {
		if !skip[name] {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return len(spec.Programs[b].Instructions) - len(spec.Programs[a].Instructions) })
	groups := [][]string{nil, nil, guardPrograms}
	var size [2]int
	for _, name := range names {
		g := 0
		if size[1] < size[0] {
			g = 1
		}
		groups[g] = append(groups[g], name)
		size[g] += len(spec.Programs[name].Instructions)
	}
	return groups
}

// loadPrograms loads each group of programs in parallel, sharing the maps
// in shared; the last group, the guard's, waits for the guard probe and
// is skipped when it failed. The collections are returned even on error,
// for the caller to close.
func (p *Prepared) loadPrograms(spec *ebpf.CollectionSpec, groups [][]string, shared map[string]*ebpf.Map, guardErr *error) ([]*ebpf.Collection, error) {
	colls := make([]*ebpf.Collection, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, group := range groups {
		wg.Go(func() {
			if i == len(groups)-1 {
				<-p.guardDone
				*guardErr = p.guardErr
				if p.guardErr != nil {
					return
				}
			}
			gs := spec.Copy()
			gs.Programs = map[string]*ebpf.ProgramSpec{}
			for _, name := range group {
				gs.Programs[name] = spec.Programs[name]
			}
			colls[i], errs[i] = ebpf.NewCollectionWithOptions(gs, ebpf.CollectionOptions{Cache: p.cache, MapReplacements: shared})
		})
	}
	wg.Wait()
	return colls, errors.Join(errs...)
}

// Close releases what Prepare made and Load did not take (the load clones
// the maps it uses). It waits for the background work.
func (p *Prepared) Close() {
	<-p.done
	<-p.guardDone
	for name, m := range p.maps {
		m.Close()
		delete(p.maps, name)
	}
	// The decoded kernel BTF (5 MiB of heap, and its mapping of vmlinux's
	// BTF) must not live as long as the jail, which holds p.
	p.cache, p.spec = nil, nil
}

// unsupported reports whether err says the kernel lacks a program or attach
// type (rather than, say, a permission error).
func unsupported(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// Close releases the maps and programs, and an ExecWatcher's buffer.
// Attached links keep what they need (the guard keeps the jail's cgroup).
func (o *Objects) Close() error {
	o.mu.Lock()
	w := o.exec
	o.mu.Unlock()
	if w != nil {
		w.Close()
		w.release()
	}
	o.cgMu.Lock()
	o.closed = true
	o.cgMu.Unlock()
	return o.objs.Close()
}

// useJailCgroup puts the cgroup at path in the jail_cgroup slot, which the
// host-wide programs (the unix guard, the exec hook) test tasks against,
// and returns the function that gives it back: the last one to give it
// back clears the slot. An object serves one jail: another cgroup while
// the slot is in use is an error. The map takes its own reference to the
// cgroup, so the fd is closed right away.
func (o *Objects) useJailCgroup(path string) (release func() error, err error) {
	cg, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open jail cgroup: %w", err)
	}
	defer cg.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(cg.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat jail cgroup %s: %w", path, err)
	}
	id := [2]uint64{st.Dev, st.Ino}
	o.cgMu.Lock()
	defer o.cgMu.Unlock()
	switch {
	case o.closed:
		return nil, fmt.Errorf("set jail cgroup %s: %w", path, os.ErrClosed)
	case o.cgUsers > 0 && o.cgID != id:
		return nil, fmt.Errorf("set jail cgroup %s: the object already serves another cgroup", path)
	case o.cgUsers == 0:
		if err := o.objs.JailCgroup.Put(uint32(0), uint32(cg.Fd())); err != nil {
			return nil, fmt.Errorf("set jail cgroup %s: %w", path, err)
		}
		o.cgID = id
	}
	o.cgUsers++
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			o.cgMu.Lock()
			defer o.cgMu.Unlock()
			o.cgUsers--
			if o.cgUsers > 0 || o.closed {
				return
			}
			if e := o.objs.JailCgroup.Delete(uint32(0)); e != nil && !errors.Is(e, ebpf.ErrKeyNotExist) {
				err = fmt.Errorf("clear jail cgroup: %w", e)
			}
		})
		return err
	}, nil
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
		// Last: until the command starts nothing in the jail listens.
		{ingressProgram, p.JailIngress, ebpf.AttachCGroupInetIngress, false},
		// Linux 6.7+: without them a jail still runs, with the unix side
		// door open (ProbeAttach marks them Optional for `ebpfjail check`).
		{"connect_unix", p.JailConnectUnix, ebpf.AttachCgroupUnixConnect, true},
		{"sendmsg_unix", p.JailSendmsgUnix, ebpf.AttachCgroupUnixSendmsg, true},
	}
}

// ingressProgram is the attachment AttachOptions.AllowInbound leaves out.
const ingressProgram = "ingress"

// AttachOptions change what Attach attaches.
type AttachOptions struct {
	// AllowInbound leaves out the ingress program: the jail's sockets then
	// receive packets from other hosts too (a server on 0.0.0.0 is reachable
	// from the network).
	AllowInbound bool
}

// Links are the programs attached for one jail: the cgroup programs, and
// the unix guard's LSM programs, which act for that cgroup only.
type Links struct {
	links   []link.Link
	pinned  string
	missing []string
	reasons map[string]error // why each of missing is missing
	release func() error     // gives back the jail_cgroup slot
	guard   *Objects         // whose guardOn this Links counts in, if any
	// guardErr is why the unix guard is not attached, nil when it is.
	guardErr error
	// The identity hooks (not pinned: without a supervisor nothing reads
	// their records), and why they are not attached, nil when they are.
	identity    []link.Link
	dropExec    func() error
	identityErr error
}

// Attach attaches every program to the cgroup at path, and the unix guard
// (two BPF LSM programs, host-wide hooks that act only for tasks in that
// cgroup and below; see DenyUnix), making path the object's jail cgroup
// (the one WatchExec may watch too). An optional cgroup program the kernel
// cannot load or attach is left out and named by Missing; the guard, if
// the kernel cannot load, attach or run it, is left out and UnixGuard says
// why. On error nothing stays attached.
func (o *Objects) Attach(cgroupPath string) (*Links, error) {
	return o.AttachWith(cgroupPath, AttachOptions{})
}

// AttachWith is Attach with options. It also attaches the identity hooks
// (exec, fork, exit: Links.Identity says whether they are), which let
// Origin name the program that connected.
func (o *Objects) AttachWith(cgroupPath string, opts AttachOptions) (*Links, error) {
	release, err := o.useJailCgroup(cgroupPath)
	if err != nil {
		return nil, err
	}
	ls := &Links{release: release}
	ls.identity, ls.dropExec, ls.identityErr = o.attachIdentity()
	for _, a := range o.attachments() {
		if a.name == ingressProgram && opts.AllowInbound {
			continue
		}
		if a.prog == nil && a.optional { // not loaded (o.unixErr)
			ls.miss(a.name, o.unixErr)
			continue
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: a.typ, Program: a.prog})
		if err != nil {
			if a.optional && unsupported(err) {
				ls.miss(a.name, fmt.Errorf("%w: %w", ebpf.ErrNotSupported, err))
				continue
			}
			ls.Close()
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
		ls.links = append(ls.links, l)
	}
	guard, err := o.attachGuard()
	if err != nil {
		ls.guardErr = err
		return ls, nil
	}
	ls.links = append(ls.links, guard...)
	o.cgMu.Lock()
	o.guardOn++
	o.cgMu.Unlock()
	ls.guard = o
	return ls, nil
}

func (ls *Links) miss(name string, why error) {
	ls.missing = append(ls.missing, name)
	if ls.reasons == nil {
		ls.reasons = map[string]error{}
	}
	ls.reasons[name] = why
}

// Missing names the optional cgroup programs this kernel could not attach
// ("connect_unix", "sendmsg_unix" before Linux 6.7): the jail runs without
// them. The unix guard is not among them: see UnixGuard.
func (ls *Links) Missing() []string {
	return ls.missing
}

// MissingReason says why the program Missing names is missing (an error
// wrapping ebpf.ErrNotSupported), nil for a program that is not missing.
func (ls *Links) MissingReason(name string) error {
	return ls.reasons[name]
}

// UnixGuard is nil when the unix guard is attached and runs, and otherwise
// says why not, wrapping ebpf.ErrNotSupported: no BPF LSM in the kernel,
// no "bpf" in its active LSM list, no BPF trampolines. The jail runs
// without it; DenyUnix's paths are then refused only as written (by the
// cgroup hooks, if Missing does not name them).
func (ls *Links) UnixGuard() error {
	return ls.guardErr
}

// Pin pins every link under dir (on a bpffs), the unix guard's too, so the
// programs stay attached even if this process dies: the jail then fails
// closed (the guard keeps the jail's cgroup and deny lists with it).
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

// KeepPins makes Close leave the pinned links (and so the programs
// attached to the jail's cgroup) in place, for inspection; removing the
// pin directory detaches them.
func (ls *Links) KeepPins() { ls.pinned = "" }

// Close detaches every program, removes the pins and, once nothing else
// (WatchExec) uses it, clears the jail's cgroup from the object.
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
	for _, l := range ls.identity {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	ls.identity = nil
	if ls.dropExec != nil {
		if err := ls.dropExec(); err != nil {
			errs = append(errs, err)
		}
		ls.dropExec = nil
	}
	if o := ls.guard; o != nil {
		o.cgMu.Lock()
		o.guardOn--
		o.cgMu.Unlock()
		ls.guard = nil
	}
	if ls.pinned != "" {
		if err := RemovePins(ls.pinned); err != nil {
			errs = append(errs, err)
		}
	}
	// Only now: the guard is detached, it can no longer see an empty slot.
	if ls.release != nil {
		if err := ls.release(); err != nil {
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
