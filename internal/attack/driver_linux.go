package attack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// The ports --target hosts serve: HTTP and HTTPS for the decoy name, UDP
// recorders on 9 and 443, DNS on 53 (which is also the shim's upstream).
const (
	targetHTTP  = 80
	targetHTTPS = 443
	targetUDP   = 9
	targetQUIC  = 443
)

// Drive is one `ebpfjail check --attack`.
type Drive struct {
	// V4 and V6 are the --target hosts; invalid: canaries on this host.
	V4, V6 netip.Addr
	// User runs the attempts, and a victim outside the jail ("" is nobody).
	User string
	// StateDir and BPFFS are the jails' state records and the bpffs mount:
	// attempts try to reach them.
	StateDir, BPFFS string
	Verbose         bool // pass -v to the jail, and show its stderr
	Log             *slog.Logger
}

// HintError is a failure to set the run up, with what the user can do.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// driver is a run in progress, with what it set up to tear down.
type driver struct {
	Drive
	self, dir   string
	spec        Spec
	canaries    *Canaries
	dnsUpstream netip.AddrPort
	env         []string
	cleanups    []func() // run in reverse
}

// Run jails a copy of this executable, which tries every escape in
// Attempts, and writes a line per attempt with what the canaries saw. It
// returns 1 if anything got out, or if the controls did not get through
// (then the run proves nothing).
func (d Drive) Run(w io.Writer) (int, error) {
	r := &driver{Drive: d, env: os.Environ()}
	if r.User == "" {
		r.User = "nobody"
	}
	defer r.close()
	cmd, stderr, err := r.setUp()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	all := Attempts()
	fmt.Fprintf(w, "ebpfjail check --attack: %d attempts by user %s in a jail that allows only %s, aimed at %s and %s\n",
		len(all), r.User, Decoy, r.spec.V4, r.spec.V6)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the jail: %w", err)
	}
	ctl := r.followControl(cmd.Process.Pid)
	seen := map[string]Outcome{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var out Outcome
		if err := json.Unmarshal(sc.Bytes(), &out); err != nil {
			r.Log.Warn("attacker said something else", "line", sc.Text())
			continue
		}
		seen[out.Name] = out
		printOutcome(w, out)
	}
	runErr := cmd.Wait()
	bad := report(w, all, seen, r.canaries) + ctl(w)
	if runErr != nil && len(seen) < len(all) {
		fmt.Fprintf(w, "the jail ended with %v:\n%s", runErr, stderr.String())
	}
	if bad > 0 {
		fmt.Fprintf(w, "%d problem(s): see the LEAKED and FAILED lines above\n", bad)
		return 1, nil
	}
	fmt.Fprintf(w, "every attempt was blocked\n")
	return 0, nil
}

// followControl follows the jail's control socket from the server's side
// (followControl in attempts_control.go); the function it returns, called
// once the jail ended, writes what the server saw and returns the number
// of problems: a peer of the jail that reached the socket, or no verdict.
func (r *driver) followControl(pid int) func(io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		refused int64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		n, err := followControl(ctx, r.StateDir, pid, r.spec.Control)
		done <- result{n, err}
	}()
	return func(w io.Writer) int {
		defer cancel()
		var res result
		select {
		case res = <-done:
		case <-time.After(controlWait):
			res.err = errors.New("the control socket did not end with the jail")
		}
		switch {
		case res.err != nil:
			printOutcome(w, Outcome{Name: "control-socket", Status: Broken, Detail: "no verdict from the server: " + res.err.Error()})
			return 1
		case res.refused > 0:
			printOutcome(w, Outcome{Name: "control-socket", Status: Leaked, Detail: fmt.Sprintf("the control socket's server refused %d peer(s): the jail reached it", res.refused)})
			return 1
		}
		return 0
	}
}

// close removes what the run set up, last first.
func (r *driver) close() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// setUp makes the attacker's directory, the canaries, the victim and the
// spec, and returns the command that runs the jail.
func (r *driver) setUp() (*exec.Cmd, *bytes.Buffer, error) {
	var err error
	if r.dir, err = os.MkdirTemp("", "ebpfjail-attack-"); err != nil {
		return nil, nil, err
	}
	r.cleanups = append(r.cleanups, func() { os.RemoveAll(r.dir) })
	// The jailed user must be able to run the attacker and reach the stand-in sockets.
	if err := os.Chmod(r.dir, 0o755); err != nil {
		return nil, nil, err
	}
	if r.self, err = os.Executable(); err != nil {
		return nil, nil, fmt.Errorf("find own executable: %w", err)
	}
	if err := copyFile(r.self, filepath.Join(r.dir, "ebpfjail"), 0o755); err != nil {
		return nil, nil, err
	}
	if err := r.startCanaries(); err != nil {
		return nil, nil, err
	}
	if err := r.prepareSpec(); err != nil {
		return nil, nil, err
	}
	return r.jailCommand()
}

// startCanaries starts the canaries on this host, or aims at --target.
func (r *driver) startCanaries() error {
	if !r.V4.IsValid() {
		c, err := StartCanaries(r.dir)
		if err != nil {
			return &HintError{err, "check --attack needs free ports on 127.86.74.1 and ::1"}
		}
		r.canaries = c
		r.cleanups = append(r.cleanups, c.Close)
		r.spec, r.dnsUpstream = c.Spec, c.DNSUpstream
		// Upstream, ebpfjail must trust the HTTPS canary, for the control
		// (of duplicate variables, exec passes the last).
		r.env = append(r.env, "SSL_CERT_FILE="+c.CACert)
		return nil
	}
	r.canaries = &Canaries{}
	r.cleanups = append(r.cleanups, r.canaries.Close)
	r.spec.V4, r.spec.V6 = r.V4, r.V6
	r.spec.HTTP, r.spec.HTTPS, r.spec.UDP, r.spec.QUIC, r.spec.DNS = targetHTTP, targetHTTPS, targetUDP, targetQUIC, 53
	r.dnsUpstream = netip.AddrPortFrom(r.spec.V4, 53)
	return nil
}

// prepareSpec fills in the unix sockets, the paths the attempts aim at,
// the setuid helper, the denied copy of the attacker and the inbound
// sender.
func (r *driver) prepareSpec() error {
	s := &r.spec
	// Unix sockets: the real ones this machine has on the default deny
	// list, and a stand-in of each kind that is denied the same way.
	resolverStandIn := filepath.Join(r.dir, "run/systemd/resolve/io.systemd.Resolve")
	engineStandIn := filepath.Join(r.dir, "run/docker.sock")
	for _, p := range []string{resolverStandIn, engineStandIn} {
		if err := r.canaries.UnixCanary(p); err != nil {
			return err
		}
	}
	s.Resolver, s.Engine = []string{resolverStandIn}, []string{engineStandIn}
	s.EngineStandIn = engineStandIn
	for _, p := range bpf.DefaultUnixDeny {
		if strings.Contains(p, "resolve") || strings.Contains(p, "nscd") {
			s.Resolver = append(s.Resolver, p)
		} else {
			s.Engine = append(s.Engine, p)
		}
	}
	s.CAKey = tlsca.KeyPath(tlsca.DefaultDir)
	s.StateDir = r.StateDir
	s.PinDir = filepath.Join(r.BPFFS, "ebpfjail")
	s.Control = filepath.Join(r.dir, "control.sock")
	s.Setuid = setuidHelper(r.dir, r.User)
	// A copy of the attacker that the rule denies by its exe, for the
	// identity races; and a sender on a link-local veth, for inbound.
	s.Attacker = filepath.Join(r.dir, "ebpfjail")
	s.BlockedExe = filepath.Join(r.dir, "ebpfjail-denied")
	if err := copyFile(r.self, s.BlockedExe, 0o755); err != nil {
		return err
	}
	var err error
	if s.Inbound, err = r.canaries.StartInbound(); err != nil {
		r.canaries.Skipped = append(r.canaries.Skipped, "inbound: "+err.Error())
	}
	return nil
}

// jailCommand starts the victim and returns the command that runs the
// jail, and the buffer its stderr goes to.
func (r *driver) jailCommand() (*exec.Cmd, *bytes.Buffer, error) {
	// A socket to the target, opened outside the jail and passed down to
	// the jail's supervisor, as a careless parent would: it must not reach
	// the jailed command.
	bait, err := net.Dial("tcp", netip.AddrPortFrom(r.spec.V4, r.spec.HTTP).String())
	if err != nil {
		return nil, nil, &HintError{fmt.Errorf("connect to the target: %w", err), "with --target, the host must serve HTTP on port 80"}
	}
	baitFile, err := bait.(*net.TCPConn).File()
	bait.Close()
	if err != nil {
		return nil, nil, err
	}
	r.cleanups = append(r.cleanups, func() { baitFile.Close() })
	// Outside the jail: a process of the jailed user, and an abstract
	// socket, for the isolation attempts.
	r.spec.Abstract = abstractCanaryName()
	if err := r.canaries.UnixCanary(r.spec.Abstract); err != nil {
		return nil, nil, err
	}
	victim, stopVictim, err := startVictim(r.spec.Attacker, r.User, r.spec)
	if err != nil {
		return nil, nil, err
	}
	r.cleanups = append(r.cleanups, stopVictim)
	r.spec.Victim = victim
	// The jail runs with a private /etc/hosts in which LocalName is the
	// loopback canary: a name ebpfjail resolves to this host itself.
	hosts, err := Hosts()
	if err != nil {
		return nil, nil, err
	}
	hostsFile := filepath.Join(r.dir, "hosts")
	if err := os.WriteFile(hostsFile, hosts, 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(r.self, append([]string{HostsArg, hostsFile, r.self}, r.jailArgs()...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Env = r.env
	cmd.ExtraFiles = []*os.File{baitFile}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if r.Verbose {
		cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	}
	return cmd, &stderr, nil
}

// jailArgs are ebpfjail's arguments for the jail. The rule is a --proc
// program (RuleFor run by the JavaScript engine in a program), so that an
// attempt can try to forge its verdicts. --proc splits its command at
// spaces: the temporary directory has none.
func (r *driver) jailArgs() []string {
	s := r.spec
	args := []string{"--user", r.User, "--proc", s.Attacker + " " + RuleArg + " " + s.BlockedExe,
		"--resolve", Decoy + ":" + s.V4.String(),
		"--dns", "forward", "--dns-upstream", r.dnsUpstream.String(),
		"--deny-unix", s.Resolver[0], "--deny-unix", s.Engine[0],
		"--timeout", "300"}
	if r.Verbose {
		args = append(args, "-v")
	}
	return append(args, "--", s.Attacker, RunArg, s.Encode())
}

// report writes the attempts without a result and what the canaries got,
// whatever the attempts believed, and returns the number of problems.
func report(w io.Writer, all []Attempt, seen map[string]Outcome, canaries *Canaries) int {
	bad := 0
	for _, a := range all {
		out, ok := seen[a.Name]
		switch {
		case !ok:
			bad++
			printOutcome(w, Outcome{Name: a.Name, Status: Broken, Detail: "no result: the attacker stopped early"})
		case out.Status == Leaked || out.Status == Broken:
			bad++
		}
	}
	leaks := 0
	for _, h := range canaries.Hits() {
		name := Attribute(h)
		if name == "" {
			continue
		}
		leaks++
		printOutcome(w, Outcome{Name: name, Status: Leaked, Detail: fmt.Sprintf("the %s canary received %q", h.Canary, hitLine(h.What))})
	}
	if leaks == 0 && canaries.Spec.HTTP != 0 {
		fmt.Fprintln(w, "canaries: nothing arrived but the controls")
	}
	for _, s := range canaries.Skipped {
		fmt.Fprintf(w, "note: canary not running: %s\n", s)
	}
	return bad + leaks
}

func printOutcome(w io.Writer, o Outcome) {
	fmt.Fprintf(w, "%-8s %-21s %s\n", o.Status, o.Name, o.Detail)
}

// hitLine is the first line of what a canary received, as received.
func hitLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// setuidHelper makes a setuid-root copy of id(1) in dir and returns its
// path, or "" when setuid does not work here for user (a nosuid mount, no
// id, an unknown user): the attempt then says n/a instead of proving
// nothing. It proves the helper first, outside the jail: run as user, it
// must print euid 0.
func setuidHelper(dir, user string) string {
	id, err := exec.LookPath("id")
	if err != nil {
		return ""
	}
	u, err := osuser.Lookup(user)
	if err != nil {
		return ""
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return ""
	}
	helper := filepath.Join(dir, "id-setuid")
	// os.ModeSetuid, not 0o4000: os.Chmod ignores the raw bit.
	if copyFile(id, helper, 0o755) != nil || os.Chmod(helper, os.ModeSetuid|0o755) != nil {
		return ""
	}
	cmd := exec.Command(helper, "-u")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		os.Remove(helper)
		return ""
	}
	return helper
}

// copyFile copies src to dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
