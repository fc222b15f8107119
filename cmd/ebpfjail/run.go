//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/dns"
	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func jailPaths() (jail.Paths, error) {
	p, err := jail.DefaultPaths()
	if err != nil {
		if errors.Is(err, jail.ErrNoCgroup2) {
			return p, fail(exitFailure, err, "mount it (mount -t cgroup2 none /sys/fs/cgroup) or run 'ebpfjail check'")
		}
		return p, fail(exitFailure, err, "run 'ebpfjail check' to see what this host lacks")
	}
	return p, nil
}

// runJail runs o.command in a new jail and returns its exit status.
func runJail(o *options, log *slog.Logger) (int, error) {
	if err := needRoot("jailing a command", "ebpfjail -- curl https://example.com"); err != nil {
		return 0, err
	}
	// Before anything is opened: the command must inherit only 0-2.
	if err := jail.CloseInheritedFDs(); err != nil {
		return 0, err
	}
	// No collection while the jail starts: decoding the kernel's BTF
	// allocates fast enough to pull the GC, and its assists, onto the
	// critical path (about 2 ms of a ~33 ms start); a few MiB of garbage
	// wait until the command runs.
	gc := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gc)
	// The half of loading the BPF object that needs no ports (kernel BTF,
	// probes, the big maps: about half the start-up) runs while the rule
	// compiles and the CA loads.
	prep := bpf.Prepare()
	defer prep.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	user, err := jail.ResolveUser(o.user, os.Getenv, os.Getuid())
	if err != nil {
		if errors.Is(err, jail.ErrRootChild) {
			return 0, fail(exitFailure, errors.New("refusing to run the command as root: a root process can leave the jail"),
				"run ebpfjail through sudo from your own account, or pick a user with --user USER",
				"--user root runs it as root anyway")
		}
		return 0, fail(exitFailure, err, "--user takes a user name or a numeric uid")
	}
	if user.UID == 0 {
		warnf(os.Stderr, "the command runs as root and can leave the jail (--user root)")
	}

	engine, err := buildEngine(o, log, user)
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	out, err := openOutputs(o)
	if err != nil {
		return 0, err
	}
	ca, trustEnv, removeTrust, err := trust(log)
	if err != nil {
		return 0, err
	}
	defer removeTrust()

	paths, err := jailPaths()
	if err != nil {
		return 0, err
	}
	if swept, err := jail.Sweep(paths, log); err != nil {
		log.Warn("cleaning up old jails", "err", err)
	} else if len(swept) > 0 {
		log.Info("removed jails of dead supervisors", "count", len(swept))
	}

	s, err := startServices(o, log, engine, ca, out, prep)
	if err != nil {
		out.close()
		return 0, err
	}
	defer s.close()

	unixDeny := unixDenyList(o, user)
	if err := s.objs.DenyUnix(unixDeny); err != nil {
		return 0, fail(exitUsage, err, "--deny-unix takes an absolute path or @name")
	}
	j, err := jail.New(paths)
	if err != nil {
		return 0, fail(exitFailure, err, "run 'ebpfjail check' to see what this host lacks")
	}
	if o.inbound {
		warnf(os.Stderr, "--allow-inbound: other hosts can reach the command's servers and send it data the rule never sees")
	}
	links, err := s.objs.AttachWith(j.Cgroup, bpf.AttachOptions{AllowInbound: o.inbound})
	if err == nil {
		err = links.Pin(j.PinDir)
		if err != nil {
			links.Close()
		}
	}
	if err != nil {
		j.Destroy()
		return 0, fail(exitFailure, err, "run 'ebpfjail check' to see which program this kernel cannot attach")
	}
	log.Debug("jail ready", "id", j.ID, "cgroup", j.Cgroup, "pins", j.PinDir)
	if err := links.UnixGuard(); err != nil {
		log.Info("no unix guard: denied sockets are masked in the jail's mount namespace if they exist at start, and denied by their exact path", "reason", err)
	}
	if err := links.Identity(); err != nil {
		warnf(os.Stderr, "r.proc.exe is read from /proc when a connection is accepted, not at connect(): %v", err)
	}
	if missing := links.Missing(); len(missing) > 0 {
		warnf(os.Stderr, "this kernel lacks %s: denied unix sockets (resolvers, container engines) are masked only if they exist now; one started later is not guarded", strings.Join(missing, ", "))
	}
	stopExec := watchExec(s.objs, j.Cgroup, out, log)
	teardown := func() {
		// Kill first, then detach: nothing of the jail runs unsteered.
		if procs, _ := j.Procs(); len(procs) > 0 {
			log.Info("killing processes left in the jail", "count", len(procs))
		}
		if err := j.Kill(); err != nil {
			log.Warn("kill jail", "err", err)
		}
		if err := links.Close(); err != nil {
			log.Warn("detach programs", "err", err)
		}
		stopExec()
		if err := j.Destroy(); err != nil {
			log.Warn("remove jail; 'ebpfjail --cleanup' retries", "err", err)
		}
		if o.verbose >= 2 {
			if st, err := s.objs.Stats(); err == nil {
				log.Debug("kernel counters", "stats", st)
			}
			log.Debug("dns shim", "malformed_queries", s.dns.Malformed())
		}
	}
	openAbstract := abstractAllowed(o.allowUnix)
	if len(openAbstract) > 0 {
		// The jail's Landlock scope cannot open one name: the cgroup
		// unix hooks decide abstract names instead, or nothing does.
		if len(links.Missing()) > 0 {
			teardown()
			out.close()
			return 0, fail(exitFailure, fmt.Errorf("--allow-unix %s needs the cgroup unix socket hooks, which this kernel lacks (%s)", openAbstract[0], strings.Join(links.Missing(), ", ")),
				"they come with Linux 6.7; without them ebpfjail can open no single abstract socket, only refuse them all (leave out --allow-unix @NAME)")
		}
		if err := s.objs.AllowAbstractOnly(openAbstract); err != nil {
			teardown()
			out.close()
			return 0, fail(exitUsage, err, "--allow-unix takes an absolute path or @name")
		}
	}
	logIsolation(jail.ProbeIsolation(), len(openAbstract) > 0, log)
	// A signal during setup aborts before the command starts.
	select {
	case sig := <-sigs:
		teardown()
		return 128 + int(sig.(syscall.Signal)), nil
	default:
	}

	fg := isForeground(os.Stdin)
	proc, err := j.Start(jail.Command{
		Args: o.command, Env: withEnv(os.Environ(), trustEnv), User: user,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Foreground: fg, Mask: unixDeny, Log: log, OpenAbstractUnix: len(openAbstract) > 0,
	})
	if err != nil {
		teardown()
		out.close()
		return 0, startError(o, err, user.Name)
	}
	log.Info("command started", "pid", proc.Pid, "user", user.Name, "jail", j.ID)
	debug.SetGCPercent(gc)
	// Only now: the command was born with the user's limits (raiseFileLimit).
	if lim, err := raiseFileLimit(); err != nil {
		warnf(os.Stderr, "the jail's connections are limited by ebpfjail's descriptor limit: %v", err)
	} else {
		log.Debug("descriptor limit", "soft", lim.Cur, "hard", lim.Max)
	}
	stats := func() { writeStats(os.Stderr, s.proxy.Active()) }
	status := wait(proc.Pid, fg, sigs, o.timeout, func() { j.Kill() }, stats, log)
	if fg {
		reclaimTerminal(os.Stdin)
	}
	teardown()
	// The last handlers (a handshake the client just refused, a request
	// cut by the kill) write their events before the summary and the logs
	// are closed.
	s.close()
	out.finish(status)
	return status, nil
}

// services are what a jail needs running before its programs are loaded.
type services struct {
	dns   *dns.Shim
	proxy *proxy.Proxy
	objs  *bpf.Objects
	// loaded is objs once they exist: the listeners run before the object
	// is loaded (it needs their ports), and any local process can connect.
	loaded atomic.Pointer[bpf.Objects]
}

func (s *services) origDst(peer netip.AddrPort) (bpf.Origin, error) {
	objs := s.loaded.Load()
	if objs == nil {
		return bpf.Origin{}, bpf.ErrNoOrigDst
	}
	return objs.OrigDst(peer)
}

func (s *services) socketOrigin(cookie uint64) (bpf.Origin, error) {
	objs := s.loaded.Load()
	if objs == nil {
		return bpf.Origin{}, bpf.ErrNoOrigDst
	}
	return objs.SocketOrigin(cookie)
}

// close stops the listeners and waits for their connections' handlers,
// which may still have an event to write; it may be called twice.
func (s *services) close() {
	if s.proxy != nil {
		s.proxy.Close()
		s.proxy = nil
	}
	if s.dns != nil {
		s.dns.Close()
		s.dns = nil
	}
	if s.objs != nil {
		s.objs.Close()
		s.objs = nil
	}
}

func startServices(o *options, log *slog.Logger, engine rules.Engine, ca proxy.CertSource, out *outputs, prep *bpf.Prepared) (*services, error) {
	s := &services{}
	upstream := o.dnsUpstream
	if upstream == "" {
		var err error
		if upstream, err = dns.SystemUpstream("/etc/resolv.conf"); err != nil {
			upstream = "127.0.0.1:53" // glibc's default without a nameserver line
			log.Debug("no nameserver in /etc/resolv.conf", "err", err, "upstream", upstream)
		}
	}
	pins, err := parseResolve(o.resolve)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	dcfg := dns.Config{
		Upstream:     upstream,
		Logger:       log.With("component", "dns"),
		SocketOrigin: s.socketOrigin,
		Events:       out.emit,
	}
	var synthetic *dns.Synthetic
	if o.dnsMode == "fake" && o.dnsUpstream != "" {
		warnf(os.Stderr, "--dns-upstream has no effect with --dns fake (nothing is forwarded); add --dns forward")
	}
	if o.dnsMode == "fake" {
		synthetic = dns.NewSynthetic()
		dcfg.Fake = synthetic
	} else {
		dcfg.Rules = engine
	}
	s.dns, err = dns.Listen(dcfg)
	if err != nil {
		return nil, fail(exitFailure, err)
	}
	pcfg := proxy.Config{
		Logger:   log.With("component", "proxy"),
		OrigDst:  s.origDst,
		DNS:      s.dns.ServeConn,
		Rules:    engine,
		CA:       ca,
		NoMITM:   o.noMITM,
		Resolver: &proxy.Resolver{Pins: pins, LocalNames: o.localNames},
		TCP:      o.tcp,
		Events:   out.emit,
	}
	if synthetic != nil {
		pcfg.Synthetic = synthetic
	} else {
		pcfg.ResolvedNames = s.dns.Names
	}
	s.proxy, err = proxy.Listen(pcfg)
	if err != nil {
		s.close()
		return nil, fail(exitFailure, err)
	}
	l4, l6 := s.proxy.Ports()
	d4, d6 := s.dns.Ports()
	s.objs, err = prep.Load(bpf.Config{ListenPort4: l4, ListenPort6: l6, DNSPort4: d4, DNSPort6: d6})
	if err != nil {
		s.close()
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) && o.verbose >= 2 {
			fmt.Fprintf(os.Stderr, "%+v\n", ve)
		}
		hints := []string{"run 'ebpfjail check' to see what this kernel lacks"}
		if errors.As(err, &ve) && o.verbose < 2 {
			hints = append(hints, "-vv prints the verifier log")
		}
		return nil, fail(exitFailure, err, hints...)
	}
	s.loaded.Store(s.objs)
	return s, nil
}

// runCleanup removes jails whose supervisor died.
func runCleanup(w io.Writer, log *slog.Logger) (int, error) {
	if err := needRoot("--cleanup", "ebpfjail --cleanup"); err != nil {
		return 0, err
	}
	paths, err := jailPaths()
	if err != nil {
		return 0, err
	}
	swept, err := jail.Sweep(paths, log)
	for _, s := range swept {
		fmt.Fprintf(w, "removed jail %s (%d process(es) killed)\n", s.ID, s.Procs)
	}
	if err != nil {
		return 0, fail(exitFailure, err, "run 'ebpfjail --cleanup' again; a jail that cannot be removed stays refused")
	}
	if len(swept) == 0 {
		fmt.Fprintln(w, "no jails to clean up")
	}
	return 0, nil
}

// watchExec reports each process started in the jail as an exec event.
// Without the hook the jail still works: the events are simply missing.
func watchExec(objs *bpf.Objects, cgroup string, out *outputs, log *slog.Logger) (stop func()) {
	w, err := objs.WatchExec(cgroup)
	if err != nil {
		log.Warn("no exec events", "err", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := w.Next()
			if err != nil {
				return // closed, after the buffered events
			}
			out.emit(event.Event{
				V: event.Version, Type: event.TypeExec, Time: time.Now().UTC(),
				PID: ev.PID, PPID: ev.PPID, UID: ev.UID, Comm: ev.Comm, Exe: ev.Exe, Argv: ev.Argv,
			})
		}
	}()
	return func() {
		w.Close()
		<-done
	}
}

// unixDenyList is the default list of unix sockets that lead outside the
// jail (resolver daemons, container engines), with the user's own engines,
// plus --deny-unix, minus --allow-unix. An allowed socket is allowed under
// each name on the list ("/var/run/docker.sock" with "/run/docker.sock"):
// else the mask of the other name would cover it.
func unixDenyList(o *options, user *jail.User) []string {
	allow := map[string]bool{}
	type fileID struct{ dev, ino uint64 }
	allowed := map[fileID]bool{}
	id := func(p string) (fileID, bool) {
		var st unix.Stat_t
		if !strings.HasPrefix(p, "/") || unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return fileID{}, false
		}
		return fileID{st.Dev, st.Ino}, true
	}
	for _, p := range o.allowUnix {
		allow[p] = true
		if f, ok := id(p); ok {
			allowed[f] = true
		}
	}
	var out []string
	for _, p := range append(append(append([]string{}, bpf.DefaultUnixDeny...), bpf.UserUnixDeny(int(user.UID))...), o.denyUnix...) {
		if f, ok := id(p); allow[p] || ok && allowed[f] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// abstractAllowed are the abstract sockets --allow-unix names. With any,
// the jail runs without the Landlock abstract socket scope (it has no
// per-name exception) and the cgroup unix hooks let through these names
// and no other abstract one.
func abstractAllowed(allow []string) []string {
	var out []string
	for _, p := range allow {
		if strings.HasPrefix(p, "@") || strings.HasPrefix(p, "\x00") {
			out = append(out, p)
		}
	}
	return out
}

// logIsolation says which isolation layers hold (-v) and warns about the
// missing ones.
func logIsolation(iso jail.Isolation, openAbstract bool, log *slog.Logger) {
	held, missing := iso.Layers(openAbstract)
	for _, h := range held {
		log.Info("isolation", "holds", h)
	}
	for _, m := range missing {
		warnf(os.Stderr, "isolation layer missing: %s", m)
	}
}
