package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/jail"
)

// checkResult is one line of `ebpfjail check`.
type checkResult struct {
	what string
	err  error
	hint string
}

// Check reports on w, piece by piece, whether this host can run a jail,
// and warns on warn about what a jail would run without. It returns the
// exit status: 0 when everything needed is there, 1 otherwise.
func Check(w, warn io.Writer) int {
	var res []checkResult
	add := func(what string, err error, hint string) bool {
		res = append(res, checkResult{what, err, hint})
		return err == nil
	}
	root := os.Geteuid() == 0
	var rootErr error
	if !root {
		rootErr = fmt.Errorf("running as uid %d", os.Geteuid())
	}
	add("running as root", rootErr, "run it with sudo: sudo ebpfjail check")
	add("kernel "+kernelRelease(), kernelOK(), "ebpfjail needs Linux 5.14 or later (cgroup.kill, cgroup bpf_link)")

	// The isolation layer is optional: a jail runs without it, with the
	// user's other processes in reach: say what holds and what does not.
	held, missing := jail.ProbeIsolation().Layers(false)
	for _, h := range held {
		add(h, nil, "")
	}
	for _, m := range missing {
		fmt.Fprintf(warn, "ebpfjail: warning: isolation layer missing: %s (nothing replaces it on this kernel; keep the user's other processes out of reach or run the command as a user of its own with --user)\n", m)
	}

	if root {
		paths, cgErr := jail.DefaultPaths()
		if cgErr != nil {
			add("cgroup2 and bpffs", cgErr, "mount them: mount -t cgroup2 none /sys/fs/cgroup; mount -t bpf bpf /sys/fs/bpf")
		} else {
			add("cgroup2 at "+paths.Cgroup2, nil, "")
			add("bpffs at "+paths.BPFFS, nil, "")
			checkPrograms(paths, add, warn)
		}
		// Required: the command does not start without its filter.
		add("seccomp filter: socket() only for unix, inet, inet6 and netlink; no io_uring", jail.ProbeSeccomp(),
			"a jail needs seccomp filters (CONFIG_SECCOMP_FILTER)")
		// Required: a jail does not start without its masks.
		add("unix socket paths: denied sockets masked in the jail's mount namespace, however a path is spelled", jail.ProbeMask(),
			"a jail needs mount namespaces (CONFIG_NAMESPACES) and bind mounts")
	}

	failed := 0
	for _, r := range res {
		if r.err == nil {
			fmt.Fprintf(w, "ok    %s\n", r.what)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s: %v\n", r.what, r.err)
		if r.hint != "" {
			fmt.Fprintf(w, "      hint: %s\n", r.hint)
		}
	}
	checkEngine(w)
	if failed > 0 {
		fmt.Fprintf(w, "%d check(s) failed: this host cannot run a jail yet\n", failed)
		return 1
	}
	fmt.Fprintln(w, "this host can run ebpfjail")
	fmt.Fprintln(w, "to see a jail hold, try to break out of one: sudo ebpfjail check --attack")
	return 0
}

// checkPrograms loads the object and attaches each program to a scratch
// cgroup, one at a time.
func checkPrograms(p jail.Paths, add func(string, error, string) bool, warn io.Writer) {
	objs, err := bpf.Load(bpf.Config{ListenPort4: 1, ListenPort6: 1, DNSPort4: 1, DNSPort6: 1})
	if !add("BPF object loads", err, "the kernel needs BPF cgroup programs (CONFIG_CGROUP_BPF) and BTF; -vv shows the verifier log when running a jail") {
		return
	}
	defer objs.Close()
	dir := filepath.Join(p.Cgroup2, fmt.Sprintf("ebpfjail-check-%d", os.Getpid()))
	if !add("create a cgroup under "+p.Cgroup2, os.Mkdir(dir, 0o755), "ebpfjail needs write access to the cgroup2 hierarchy") {
		return
	}
	defer unix.Rmdir(dir)
	for _, r := range objs.ProbeAttach(dir) {
		if r.Optional && r.Err != nil {
			// A jail runs without it, with a side door open: say so.
			fmt.Fprintf(warn, "ebpfjail: warning: %s unavailable (%v): denied unix sockets are masked only if they exist when a jail starts (the hook needs Linux 6.7+)\n", r.Name, r.Err)
			continue
		}
		what := "attach " + r.Name
		if r.Name == "ingress" {
			what += " (cgroup_skb: the jail receives only what comes over loopback)"
		}
		add(what, r.Err, "this kernel cannot attach the "+r.Name+" program to a cgroup")
	}
	// Optional: the inode-based unix guard (BPF LSM) also stops a denied
	// socket created after the jail started (its masks are made at start).
	if err := objs.ProbeUnixGuard(); err != nil {
		fmt.Fprintf(warn, "ebpfjail: warning: unix socket guard (BPF LSM) unavailable (%v): a denied socket created after a jail starts is matched by its exact path only\n", err)
	} else {
		add("attach the unix socket guard (BPF LSM)", nil, "")
	}
	// Optional: without it allowed tunnels are copied through ebpfjail.
	if err := probeSplice(); err != nil {
		fmt.Fprintf(warn, "ebpfjail: warning: kernel splice unavailable (%v): allowed tunnels (--no-mitm, --tcp, CONNECT) are copied through ebpfjail with splice(2)\n", err)
	} else {
		add("kernel splice (sockhash, sk_skb stream verdict): allowed tunnels bypass ebpfjail", nil, "")
	}
	// Optional: without it a jail runs, but --log-json has no exec events.
	if err := objs.ProbeExec(); err != nil {
		fmt.Fprintf(warn, "ebpfjail: warning: exec events unavailable: %v\n", err)
	} else {
		add("attach the exec hook (sched_process_exec)", nil, "")
	}
	// Optional: without it r.proc.exe is read from /proc when the
	// connection is accepted, which a process that exits or execs first
	// defeats.
	if err := objs.ProbeIdentity(); err != nil {
		fmt.Fprintf(warn, "ebpfjail: warning: process identity capture unavailable (%v): r.proc.exe is read from /proc after connect()\n", err)
	} else {
		add("attach the identity hooks (sched_process_exec, _fork, _exit: r.proc.exe recorded at connect())", nil, "")
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelOK checks the release is at least 5.14.
func kernelOK() error {
	rel := kernelRelease()
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("cannot read the version from %q", rel)
	}
	if major > 5 || (major == 5 && minor >= 14) {
		return nil
	}
	return fmt.Errorf("%s is older than 5.14", strings.TrimSpace(rel))
}

// checkEngine says whether a container engine answers its client, for
// --docker-run: a line of its own, not a failure, as a jail needs none.
func checkEngine(w io.Writer) {
	e, v, err := container.Reachable("", 5*time.Second)
	if err != nil {
		fmt.Fprintf(w, "note  container engine: %v (only --docker-run needs one)\n", err)
		return
	}
	fmt.Fprintf(w, "ok    container engine: %s %s answers %s (for --docker-run)\n", e.Name, v, e.Path)
}
