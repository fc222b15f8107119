package supervisor

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/control"
	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// startJail makes the jail's cgroup, attaches and pins the programs to it
// and sets the unix socket lists; on error nothing of the jail is left.
func startJail(c Config, log *slog.Logger, svc *services, paths jail.Paths) (*running, error) {
	unixDeny := unixDenyList(c.AllowUnix, c.DenyUnix, c.User)
	if err := svc.objs.DenyUnix(unixDeny); err != nil {
		return nil, &Error{Step: StepDenyUnix, Err: err}
	}
	j, err := jail.New(paths)
	if err != nil {
		return nil, &Error{Step: StepJail, Err: err}
	}
	if c.Inbound {
		c.Warn("--allow-inbound: other hosts can reach the command's servers and send it data the rule never sees")
	}
	links, err := svc.objs.AttachWith(j.Cgroup, bpf.AttachOptions{AllowInbound: c.Inbound})
	if err == nil {
		err = links.Pin(j.PinDir)
		if err != nil {
			links.Close()
		}
	}
	if err != nil {
		j.Destroy()
		return nil, &Error{Step: StepAttach, Err: err}
	}
	log.Debug("jail ready", "id", j.ID, "cgroup", j.Cgroup, "pins", j.PinDir)
	if err := links.UnixGuard(); err != nil {
		log.Info("no unix guard: denied sockets are masked in the jail's mount namespace if they exist at start, and denied by their exact path", "reason", err)
	}
	if err := links.Identity(); err != nil {
		c.Warn(fmt.Sprintf("r.proc.exe is read from /proc when a connection is accepted, not at connect(): %v", err))
	}
	if missing := links.Missing(); len(missing) > 0 {
		c.Warn(fmt.Sprintf("this kernel lacks %s: denied unix sockets (resolvers, container engines) are masked only if they exist now; one started later is not guarded", strings.Join(missing, ", ")))
	}
	r := &running{j: j, links: links, svc: svc, log: log, unixDeny: unixDeny}
	if err := r.listenControl(c.Control, paths); err != nil {
		r.teardown()
		return nil, err
	}
	stopExec, stopRefused := watchExec(svc.objs, j.Cgroup, c.Event, log), watchRefused(svc.objs, c.RefusedSockets, c.Event, log)
	r.stopExec = func() { stopExec(); stopRefused() }
	openAbstract := abstractAllowed(c.AllowUnix)
	if err := allowAbstract(svc.objs, links, openAbstract); err != nil {
		r.teardown()
		r.ctl.Close()
		return nil, err
	}
	r.openAbstract = len(openAbstract) > 0
	logIsolation(jail.ProbeIsolation(), r.openAbstract, c.Warn, log)
	return r, nil
}

// listenControl opens the jail's control socket (watch, ps) for hub, if
// any, before the command starts: so it exists when the jail's masks are
// made and is denied to the jail like the default list, by every spelling.
func (r *running) listenControl(hub *control.Hub, paths jail.Paths) error {
	if hub == nil {
		return nil
	}
	hub.SetJail(r.j.ID)
	srv, err := control.Listen(hub, r.j.ControlPath(), paths.InJail, r.log.With("component", "control"))
	if err != nil {
		return &Error{Step: StepJail, Err: err}
	}
	if err := r.svc.objs.DenyUnix([]string{srv.Path()}); err != nil {
		srv.Close()
		return &Error{Step: StepDenyUnix, Err: err}
	}
	r.unixDeny = append(r.unixDeny, srv.Path())
	r.ctl = srv
	return nil
}

// allowAbstract lets the jail reach the abstract sockets names and no
// other. The jail's Landlock scope cannot open one name: the cgroup unix
// hooks decide abstract names instead, or nothing does.
func allowAbstract(objs *bpf.Objects, links *bpf.Links, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if missing := links.Missing(); len(missing) > 0 {
		return &Error{Step: StepUnixHooks, Err: fmt.Errorf("--allow-unix %s needs the cgroup unix socket hooks, which this kernel lacks (%s)", names[0], strings.Join(missing, ", "))}
	}
	if err := objs.AllowAbstractOnly(names); err != nil {
		return &Error{Step: StepAllowUnix, Err: err}
	}
	return nil
}

// watchExec reports each process started in the jail as an exec event.
// Without the hook the jail still works: the events are simply missing.
func watchExec(objs *bpf.Objects, cgroup string, emit func(event.Event), log *slog.Logger) (stop func()) {
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
			emit(event.Event{
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
// plus deny, minus allow. An allowed socket is allowed under each name on
// the list ("/var/run/docker.sock" with "/run/docker.sock"): else the mask
// of the other name would cover it.
func unixDenyList(allowList, deny []string, user *jail.User) []string {
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
	for _, p := range allowList {
		allow[p] = true
		if f, ok := id(p); ok {
			allowed[f] = true
		}
	}
	var out []string
	for _, p := range append(append(append([]string{}, bpf.DefaultUnixDeny...), bpf.UserUnixDeny(int(user.UID))...), deny...) {
		if f, ok := id(p); allow[p] || ok && allowed[f] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// abstractAllowed are the abstract sockets of allow. With any, the jail
// runs without the Landlock abstract socket scope (it has no per-name
// exception) and the cgroup unix hooks let through these names and no
// other abstract one.
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
func logIsolation(iso jail.Isolation, openAbstract bool, warn func(string), log *slog.Logger) {
	held, missing := iso.Layers(openAbstract)
	for _, h := range held {
		log.Info("isolation", "holds", h)
	}
	for _, m := range missing {
		warn("isolation layer missing: " + m)
	}
}
