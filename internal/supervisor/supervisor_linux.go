package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/control"
	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Jail runs o's command in a new jail as the user userFlag names (as
// jail.ResolveUser reads it), with o's rule and records and the CA of
// tlsca.DefaultDir, and returns its exit status as Supervisor.Run does.
// Call it before opening any file: the command inherits only 0-2.
func Jail(o Options, userFlag string, log *slog.Logger) (int, error) {
	s, err := Begin()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	c := o.Config
	if c.Docker != nil && userFlag == "" && os.Getenv("SUDO_UID") == "" {
		// The container runs as its image's user; ours runs only --sh.
		userFlag = "root"
	}
	if c.User, err = jail.ResolveUser(userFlag, os.Getenv, os.Getuid()); err != nil {
		return 0, &Error{Step: StepUser, Err: err}
	}
	if c.User.UID == 0 && c.Docker == nil {
		c.Warn("the command runs as root and can leave the jail (--user root)")
	}
	engine, err := o.Rule.Engine(c.User, log)
	if err != nil {
		return 0, &Error{Step: StepRule, Err: err}
	}
	defer engine.Close()
	out, err := OpenOutputs(o.Records)
	if err != nil {
		return 0, err
	}
	ca, err := LoadCA(tlsca.DefaultDir, log)
	if err != nil {
		out.Close()
		return 0, &Error{Step: StepCA, Err: err}
	}
	// The command runs with its user's HOME (jail.Command), not ours.
	trustEnv, removeTrust, err := TrustFiles(ca, WithEnv(c.Env, []string{"HOME=" + c.User.Home}), tlsca.DefaultCacheDir, log)
	if err != nil {
		out.Close()
		return 0, err
	}
	defer removeTrust()
	c.Rules, c.CA, c.Event, c.Done = engine, ca, out.Emit, out.Finish
	// --audit is to miss nothing the command tried, at a cost to the host.
	c.RefusedSockets = o.Records.Audit
	c.Control = control.NewHub(c.Command, c.User.Name, c.User.UID, os.Getpid())
	if o.Rule.Ask {
		c.Rules = control.Ask(engine, c.Control, o.Rule.AskTimeout)
	}
	// A container gets the same variables, and only those, with -e.
	c.containerEnv = append(append([]string{}, trustEnv...), c.Secrets.Env()...)
	c.Env = WithEnv(c.Env, c.containerEnv)
	status, err := s.Run(c, log)
	if err != nil {
		out.Close()
		return 0, err
	}
	return status, nil
}

// Cleanup removes the jails whose supervisor died, with a line on w for
// each (or one saying there were none).
func Cleanup(w io.Writer, log *slog.Logger) error {
	paths, err := jail.DefaultPaths()
	if err != nil {
		return &Error{Step: StepPaths, Err: err}
	}
	swept, err := jail.SweepAll(paths, log)
	for _, s := range swept {
		fmt.Fprintf(w, "removed jail %s (%d process(es) killed)\n", s.ID, s.Procs)
	}
	if err == nil && len(swept) == 0 {
		fmt.Fprintln(w, "no jails to clean up")
	}
	return err
}

// Supervisor starts and supervises one jail.
type Supervisor struct {
	prep *bpf.Prepared
	sigs chan os.Signal
	gc   int
}

// Begin prepares a jail while the caller builds the rule and the CA: the
// half of loading the BPF object that needs no ports (kernel BTF, probes,
// the big maps: about half the start-up) runs in the background, and the
// Forwarded signals are caught from now on (one during setup aborts it).
// Call it before opening any file: the command inherits only 0-2.
func Begin() (*Supervisor, error) {
	if err := jail.CloseInheritedFDs(); err != nil {
		return nil, err
	}
	// No collection while the jail starts: decoding the kernel's BTF
	// allocates fast enough to pull the GC, and its assists, onto the
	// critical path (about 2 ms of a ~33 ms start); a few MiB of garbage
	// wait until the command runs.
	s := &Supervisor{gc: debug.SetGCPercent(-1)}
	s.prep = bpf.Prepare()
	s.sigs = make(chan os.Signal, 4)
	signal.Notify(s.sigs, Forwarded...)
	return s, nil
}

// Close releases what Begin holds and restores signals and the GC.
func (s *Supervisor) Close() {
	signal.Stop(s.sigs)
	s.prep.Close()
	debug.SetGCPercent(s.gc)
}

// Run runs c.Command in a new jail and returns its exit status (128+N if
// it died of signal N, ExitTimeout after c.Timeout), or 128+N without
// starting it if signal N came during setup. What Run made is gone when
// it returns. A failure is an *Error.
func (s *Supervisor) Run(c Config, log *slog.Logger) (int, error) {
	paths, err := jail.DefaultPaths()
	if err != nil {
		return 0, &Error{Step: StepPaths, Err: err}
	}
	if c.Control != nil {
		// The hub sees each event as the records do, time included.
		emit, hub := c.Event, c.Control
		c.Event = func(e event.Event) {
			e = report.Stamp(e)
			emit(e)
			hub.Emit(e)
		}
	}
	if swept, err := jail.Sweep(paths, log); err != nil {
		log.Warn("cleaning up old jails", "err", err)
	} else if len(swept) > 0 {
		log.Info("removed jails of dead supervisors", "count", len(swept))
	}
	svc, err := startServices(c, log, s.prep)
	if err != nil {
		return 0, err
	}
	defer svc.close()
	r, err := startJail(c, log, svc, paths)
	if err != nil {
		return 0, err
	}
	defer r.ctl.Close()
	// A signal during setup aborts before the command starts.
	select {
	case sig := <-s.sigs:
		r.teardown(c)
		return 128 + int(sig.(syscall.Signal)), nil
	default:
	}
	defer c.Gate.Release() // if Run returns before its usual release
	status, err := s.runCommand(c, log, r, paths)
	r.teardown(c)
	if err != nil {
		return 0, err
	}
	// The last handlers (a handshake the client just refused, a request
	// cut by the kill) write their events before the caller's summary.
	svc.close()
	c.Gate.Release() // the command is gone: its terminal is ours again
	if c.Done != nil {
		c.Done(status)
	}
	if c.Control != nil {
		c.Control.End(&status)
	}
	return status, nil
}

// runCommand starts the command in the jail and waits for it.
func (s *Supervisor) runCommand(c Config, log *slog.Logger, r *running, paths jail.Paths) (int, error) {
	fg := c.Stdin != nil && Foreground(c.Stdin)
	c.Gate.Hold() // from before its exec: the command may draw at once
	var proc *os.Process
	var err error
	if c.Docker != nil {
		proc, err = startContainer(c, r, paths, fg)
	} else {
		proc, err = r.j.Start(jail.Command{
			Args: c.Command, Env: c.Env, User: c.User,
			Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
			Foreground: fg, Mask: r.unixDeny, Log: log, OpenAbstractUnix: r.openAbstract,
		})
	}
	if err != nil {
		return 0, &Error{Step: StepStart, Err: err, User: c.User.Name}
	}
	log.Info("command started", "pid", proc.Pid, "user", c.User.Name, "jail", r.j.ID)
	if c.Control != nil {
		c.Control.SetPID(proc.Pid)
	}
	debug.SetGCPercent(s.gc)
	// Only now: the command was born with the user's limits (raiseFileLimit).
	if lim, err := raiseFileLimit(); err != nil {
		c.Warn("the jail's connections are limited by ebpfjail's descriptor limit: " + err.Error())
	} else {
		log.Debug("descriptor limit", "soft", lim.Cur, "hard", lim.Max)
	}
	stats := func() {
		if c.Stats != nil {
			WriteStats(c.Stats, r.svc.proxy.Active())
		}
	}
	var tty *os.File
	if fg {
		tty = c.Stdin
	}
	return Wait(proc.Pid, tty, s.sigs, c.Timeout, func() { r.j.Kill() }, stats, log), nil
}

// running is a jail with its programs attached, ready for the command.
type running struct {
	j            *jail.Jail
	links        *bpf.Links
	svc          *services
	log          *slog.Logger
	stopExec     func()
	unixDeny     []string // masked in the command's mount namespace
	openAbstract bool     // abstract sockets are decided by name
	ctl          *control.Server
	// With --docker-run: the pause container holding the container's
	// network namespace, and the engine's client.
	pause  string
	engine container.Engine
}

// teardown kills what runs in the jail, then detaches: nothing of the jail
// runs unsteered. Then it removes the jail, or with c.KeepJail leaves its
// cgroup and pinned programs (still refusing every connect: no proxy
// answers) for --cleanup.
func (r *running) teardown(c Config) {
	log := r.log
	if procs, _ := r.j.Procs(); len(procs) > 0 {
		log.Info("killing processes left in the jail", "count", len(procs))
	}
	if err := r.j.Kill(); err != nil {
		log.Warn("kill jail", "err", err)
	}
	r.removePause()
	if c.KeepJail {
		r.links.KeepPins()
	}
	if err := r.links.Close(); err != nil {
		log.Warn("detach programs", "err", err)
	}
	if r.stopExec != nil { // nil when the setup failed before it
		r.stopExec()
	}
	if c.KeepJail {
		r.keep(c)
	} else if err := r.j.Destroy(); err != nil {
		log.Warn("remove jail; 'ebpfjail --cleanup' retries", "err", err)
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		if st, err := r.svc.objs.Stats(); err == nil {
			log.Debug("kernel counters", "stats", st)
		}
		log.Debug("dns shim", "malformed_queries", r.svc.dns.Malformed())
	}
}

// keep leaves the jail for inspection and says where it is.
func (r *running) keep(c Config) {
	if err := r.j.Keep(); err != nil {
		r.log.Warn("keep jail: the next jail's start may remove it", "err", err)
	}
	c.Warn(fmt.Sprintf("--no-jail-cleanup: kept jail %s: cgroup %s, BPF pins %s (its processes killed, its connections refused); 'sudo ebpfjail --cleanup' removes it", r.j.ID, r.j.Cgroup, r.j.PinDir))
}
