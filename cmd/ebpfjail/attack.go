//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/ebpfjail/ebpfjail/internal/attack"
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

// runAttack is `ebpfjail check --attack`: it jails a copy of itself, which
// tries every escape in internal/attack, and reports each attempt with
// what the canaries saw. Exit 1 if anything got out, or if the controls
// did not get through (then the run proves nothing).
func runAttack(w io.Writer, o *options, log *slog.Logger) (int, error) {
	if err := needRoot("check --attack", "ebpfjail check --attack"); err != nil {
		return 0, err
	}
	paths, err := jailPaths()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "ebpfjail-attack-")
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	defer os.RemoveAll(dir)
	// The jailed user must be able to run the attacker and reach the stand-in sockets.
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, fail(exitFailure, err)
	}
	self, err := os.Executable()
	if err != nil {
		return 0, fail(exitFailure, fmt.Errorf("find own executable: %w", err))
	}
	attacker := filepath.Join(dir, "ebpfjail")
	if err := copyFile(self, attacker, 0o755); err != nil {
		return 0, fail(exitFailure, err)
	}

	var spec attack.Spec
	var canaries *attack.Canaries
	var dnsUpstream netip.AddrPort
	env := os.Environ()
	if len(o.targets) == 0 {
		canaries, err = attack.StartCanaries(dir)
		if err != nil {
			return 0, fail(exitFailure, err, "check --attack needs free ports on 127.86.74.1 and ::1")
		}
		defer canaries.Close()
		spec, dnsUpstream = canaries.Spec, canaries.DNSUpstream
		// Upstream, ebpfjail must trust the HTTPS canary, for the control.
		env = withEnv(env, []string{"SSL_CERT_FILE=" + canaries.CACert})
	} else {
		canaries = &attack.Canaries{}
		defer canaries.Close()
		spec.V4, spec.V6, _ = attackTargets(o.targets)
		spec.HTTP, spec.HTTPS, spec.UDP, spec.QUIC, spec.DNS = targetHTTP, targetHTTPS, targetUDP, targetQUIC, 53
		dnsUpstream = netip.AddrPortFrom(spec.V4, 53)
	}

	// Unix sockets: the real ones this machine has on the default deny
	// list, and a stand-in of each kind that is denied the same way.
	resolverStandIn := filepath.Join(dir, "run/systemd/resolve/io.systemd.Resolve")
	engineStandIn := filepath.Join(dir, "run/docker.sock")
	for _, p := range []string{resolverStandIn, engineStandIn} {
		if err := canaries.UnixCanary(p); err != nil {
			return 0, fail(exitFailure, err)
		}
	}
	spec.Resolver, spec.Engine = []string{resolverStandIn}, []string{engineStandIn}
	spec.EngineStandIn = engineStandIn
	for _, p := range bpf.DefaultUnixDeny {
		if strings.Contains(p, "resolve") || strings.Contains(p, "nscd") {
			spec.Resolver = append(spec.Resolver, p)
		} else {
			spec.Engine = append(spec.Engine, p)
		}
	}
	spec.CAKey = tlsca.KeyPath(tlsca.DefaultDir)
	spec.StateDir = paths.State
	spec.PinDir = filepath.Join(paths.BPFFS, "ebpfjail")
	user := o.user
	if user == "" {
		user = "nobody"
	}
	spec.Setuid = setuidHelper(dir, user)
	// A copy of the attacker that the rule denies by its exe, for the
	// identity races; and a sender on a link-local veth, for inbound.
	spec.Attacker, spec.BlockedExe = attacker, filepath.Join(dir, "ebpfjail-denied")
	if err := copyFile(self, spec.BlockedExe, 0o755); err != nil {
		return 0, fail(exitFailure, err)
	}
	if spec.Inbound, err = canaries.StartInbound(); err != nil {
		canaries.Skipped = append(canaries.Skipped, "inbound: "+err.Error())
	}

	// A socket to the target, opened outside the jail and passed down to
	// the jail's supervisor, as a careless parent would: it must not reach
	// the jailed command.
	bait, err := net.Dial("tcp", netip.AddrPortFrom(spec.V4, spec.HTTP).String())
	if err != nil {
		return 0, fail(exitFailure, fmt.Errorf("connect to the target: %w", err), "with --target, the host must serve HTTP on port 80")
	}
	baitFile, err := bait.(*net.TCPConn).File()
	bait.Close()
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	defer baitFile.Close()

	// Outside the jail: a process of the jailed user, and an abstract
	// socket, for the isolation attempts.
	spec.Abstract = abstractCanaryName()
	if err := canaries.UnixCanary(spec.Abstract); err != nil {
		return 0, fail(exitFailure, err)
	}
	victim, stopVictim, err := startVictim(attacker, user, spec)
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	defer stopVictim()
	spec.Victim = victim

	// The rule is a --proc program (attack.RuleFor run by the JavaScript
	// engine in a program), so that an attempt can try to forge its
	// verdicts. --proc splits its command at spaces: the temporary
	// directory has none.
	args := []string{"--user", user, "--proc", attacker + " " + attack.RuleArg + " " + spec.BlockedExe,
		"--resolve", attack.Decoy + ":" + spec.V4.String(),
		"--dns", "forward", "--dns-upstream", dnsUpstream.String(),
		"--deny-unix", resolverStandIn, "--deny-unix", engineStandIn,
		"--timeout", "300"}
	if o.verbose > 0 {
		args = append(args, "-v")
	}
	args = append(args, "--", attacker, attack.RunArg, spec.Encode())
	// The jail runs with a private /etc/hosts in which attack.LocalName is
	// the loopback canary: a name ebpfjail resolves to this host itself.
	hosts, err := attack.Hosts()
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, hosts, 0o644); err != nil {
		return 0, fail(exitFailure, err)
	}
	cmd := exec.Command(self, append([]string{attack.HostsArg, hostsFile, self}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{baitFile}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if o.verbose > 0 {
		cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fail(exitFailure, err)
	}

	all := attack.Attempts()
	fmt.Fprintf(w, "ebpfjail check --attack: %d attempts by user %s in a jail that allows only %s, aimed at %s and %s\n",
		len(all), user, attack.Decoy, spec.V4, spec.V6)
	if err := cmd.Start(); err != nil {
		return 0, fail(exitFailure, fmt.Errorf("start the jail: %w", err))
	}
	seen := map[string]attack.Outcome{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var out attack.Outcome
		if err := json.Unmarshal(sc.Bytes(), &out); err != nil {
			log.Warn("attacker said something else", "line", sc.Text())
			continue
		}
		seen[out.Name] = out
		printOutcome(w, out)
	}
	runErr := cmd.Wait()

	bad := 0
	for _, a := range all {
		out, ok := seen[a.Name]
		switch {
		case !ok:
			bad++
			printOutcome(w, attack.Outcome{Name: a.Name, Status: attack.Broken, Detail: "no result: the attacker stopped early"})
		case out.Status == attack.Leaked || out.Status == attack.Broken:
			bad++
		}
	}
	// What the canaries got, whatever the attempts believed.
	leaks := 0
	for _, h := range canaries.Hits() {
		name := attack.Attribute(h)
		if name == "" {
			continue
		}
		leaks++
		printOutcome(w, attack.Outcome{Name: name, Status: attack.Leaked, Detail: fmt.Sprintf("the %s canary received %q", h.Canary, firstLine(h.What))})
	}
	if leaks == 0 && canaries.Spec.HTTP != 0 {
		fmt.Fprintln(w, "canaries: nothing arrived but the controls")
	}
	for _, s := range canaries.Skipped {
		fmt.Fprintf(w, "note: canary not running: %s\n", s)
	}
	bad += leaks
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

func printOutcome(w io.Writer, o attack.Outcome) {
	fmt.Fprintf(w, "%-8s %-21s %s\n", o.Status, o.Name, o.Detail)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// attackChild runs the hidden attacker commands (inside the jail).
func attackChild(args []string) int {
	switch {
	case args[0] == attack.RunArg && len(args) == 2:
		spec, err := attack.DecodeSpec(args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "ebpfjail: error: %v\n", err)
			return exitUsage
		}
		attack.Run(spec, os.Stdout)
		return 0
	case args[0] == attack.HostsArg && len(args) >= 3:
		err := attack.ExecWithHosts(args[1], args[2:])
		fmt.Fprintf(os.Stderr, "ebpfjail: error: %v\n", err)
		return exitFailure
	case args[0] == attack.StepArg && len(args) == 3:
		spec, err := attack.DecodeSpec(args[2])
		if err != nil {
			fmt.Fprintf(os.Stderr, "ebpfjail: error: %v\n", err)
			return exitUsage
		}
		attack.RunStep(args[1], spec, os.Stdout)
		return 0
	case args[0] == attack.VictimArg && len(args) == 2:
		spec, err := attack.DecodeSpec(args[1])
		if err == nil {
			err = attack.RunVictim(spec, os.Stdout)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ebpfjail: error: %v\n", err)
			return exitFailure
		}
		return 0
	case args[0] == attack.RuleArg && len(args) == 2:
		if err := attack.RunRule(attack.RuleFor(attack.Spec{BlockedExe: args[1]}), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "ebpfjail: error: %v\n", err)
			return exitFailure
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "ebpfjail: error: unknown internal command %q\n", args[0])
	return exitUsage
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
