package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/ebpfjail/ebpfjail/internal/attack"
	"github.com/ebpfjail/ebpfjail/internal/cliflags"
	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/control"
	"github.com/ebpfjail/ebpfjail/internal/helptopics"
	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/profile"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
)

// The help text around the flags' list; testdata/help.golden is all of it.
var (
	//go:embed usage_head.txt
	usageHead string
	//go:embed usage_tail.txt
	usageTail string
)

// options are the parsed command line.
type options struct {
	js            string
	jsFile        string
	sh            string
	proc          string
	jsTimeout     time.Duration
	ask           bool // --ask
	askTimeout    time.Duration
	askTimeoutSet bool // --ask-timeout was given
	noMITM        []string
	allowUnix     []string
	denyUnix      []string
	inbound       bool // --allow-inbound
	dnsMode       string
	tcp           bool
	kernSplice    bool
	requestLog    string
	logJSON       string
	audit         bool
	server        bool
	listen        string
	listenTLS     string // --listen-https
	weak          bool
	resolve       []string
	localNames    []string // --allow-local-name
	ca            string   // "export" or "path"
	testSet       bool     // --test was given
	testArgs      []string // [METHOD] URL
	verbose       int
	timeout       float64
	user          string
	cleanup       bool
	noCleanup     bool // --no-jail-cleanup
	dnsUpstream   string
	version       bool
	help          bool
	topic         string // help TOPIC
	check         bool
	attack        bool          // check --attack
	targets       []string      // check --attack --target
	control       *control.Args // watch, ps
	replay        *replayArgs   // replay, rule-from
	report        *reportArgs   // report EVENTS -o FILE
	secrets       secrets.Sources
	secretSet     *secrets.Set // the values, read by loadSecrets before the command runs
	command       []string
	dockerRun     *container.Args // --docker-run: command is docker run's arguments
	engine        string          // --engine
}

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ebpfjail", pflag.ContinueOnError)
	fs.SortFlags = false
	// Everything after the command's name belongs to the command.
	fs.SetInterspersed(false)
	fs.StringVar(&o.js, "js", "", "JavaScript `CODE` deciding each request from r (r.host, r.method, r.proc.comm, ...)")
	fs.StringVar(&o.jsFile, "js-file", "", "read the JavaScript rule from `FILE` (once: the command cannot change it)")
	fs.StringVar(&o.sh, "sh", "", "run `SCRIPT` per request (HTTPJAIL_* variables); exit 0 allows, its output is the deny message")
	fs.StringVar(&o.proc, "proc", "", "one long-running `PROGRAM`: a JSON request per line in, a verdict per line out")
	fs.DurationVar(&o.jsTimeout, "js-timeout", time.Second, "deny a request whose JavaScript rule runs longer than `DURATION`")
	fs.BoolVar(&o.ask, "ask", false, "hold a request the rule denies until a person answers it ('ebpfjail watch' shows it, 'ebpfjail answer ID allow|always|deny' decides)")
	fs.DurationVar(&o.askTimeout, "ask-timeout", time.Minute, "with --ask: deny a request no one answered within `DURATION`")
	fs.StringArrayVar(&o.noMITM, "no-mitm", nil, "pass TLS to names matching `HOSTGLOB` through unopened (repeatable)")
	fs.StringArrayVar(&o.resolve, "resolve", nil, "resolve `HOST:ADDR` for upstream connections, as curl --resolve (repeatable)")
	fs.StringArrayVar(&o.localNames, "allow-local-name", nil, "let names matching `HOSTGLOB` lead to this host itself (loopback, its own addresses), as a --resolve pin may; other names never do (repeatable)")
	fs.BoolVar(&o.testSet, "test", false, "evaluate the rule once for the [METHOD] URL that follow; print ALLOW or DENY (exit 0 or 1); no jail, no root")
	fs.StringVar(&o.requestLog, "request-log", "", "append one line per request decision to `FILE` (httpjail's format)")
	fs.StringVar(&o.logJSON, "log-json", "", "write every event as one JSON object per line to `FILE` (- for stdout)")
	fs.BoolVar(&o.audit, "audit", false, "allow everything, record everything, print the process tree and what each process did at exit (a rule is still asked, for the record)")
	fs.BoolVar(&o.server, "server", false, "run only an explicit proxy (no jail, no root) until interrupted: HTTP and CONNECT on --listen, CONNECT and direct TLS on --listen-https, as httpjail")
	fs.StringVar(&o.listen, "listen", "", "with --server: serve HTTP and CONNECT on `ADDR` (ip:port, :port, port or ip; default HTTPJAIL_HTTP_BIND, else 127.0.0.1:8080)")
	fs.StringVar(&o.listenTLS, "listen-https", "", "with --server: serve CONNECT and direct TLS (for its server name, port 443) on `ADDR` (default HTTPJAIL_HTTPS_BIND, else 127.0.0.1:8443)")
	fs.BoolVar(&o.weak, "weak", false, "no root, no eBPF: only tell the command to use the proxy (HTTP_PROXY, ...); software that ignores it is not covered")
	fs.CountVarP(&o.verbose, "verbose", "v", "show every request (-v) and debugging detail (-vv); without it, denied ones are shown when stderr is not a terminal, and counted in one line at exit when it is")
	fs.Float64Var(&o.timeout, "timeout", 0, "stop the command after `SECONDS` and exit 124")
	fs.Bool("docker-run", false, "run a container in the jail: what follows -- is docker run's arguments, as in: ebpfjail --js 'r.host == \"example.com\"' --docker-run -- --rm debian:12 curl https://example.com")
	fs.StringVar(&o.engine, "engine", "", "with --docker-run: the container engine's client, `NAME` docker or podman (default: docker, else podman)")
	fs.StringVar(&o.user, "user", "", "run the command as `USER` (default: the user who ran sudo; root only as --user root)")
	fs.StringArrayVar(&o.allowUnix, "allow-unix", nil, "let the command reach the unix socket `PATH` although it is on the default deny list, or the abstract socket @NAME bound outside the jail (abstract sockets are then decided by name: only the listed ones are reachable, the jail's own included) (repeatable)")
	fs.StringArrayVar(&o.denyUnix, "deny-unix", nil, "deny the unix socket `PATH` too (repeatable; @name for an abstract one)")
	fs.BoolVar(&o.inbound, "allow-inbound", false, "let the command's sockets receive from other hosts (a server on 0.0.0.0 becomes reachable from the network); by default only loopback reaches them")
	fs.StringVar(&o.dnsMode, "dns", "fake", "`MODE` fake: answer every lookup with a stand-in address, forward nothing; forward: ask --dns-upstream for names the rule allows (r.scheme 'dns')")
	fs.BoolVar(&o.tcp, "tcp", false, "let the rule decide non-HTTP TCP (r.scheme 'tcp', r.url tcp://host:port) instead of refusing it")
	fs.BoolVar(&o.kernSplice, "kernel-splice", false, "let the kernel move an allowed tunnel's bytes (--no-mitm, --tcp, CONNECT; no max_tx_bytes) once decided, instead of ebpfjail's splice(2); ebpfjail check says if this kernel can")
	fs.StringVar(&o.dnsUpstream, "dns-upstream", "", "resolver `ADDR` (ip:port) the DNS shim forwards to (default: first nameserver of /etc/resolv.conf)")
	fs.StringArrayVar(&o.secrets.Secrets, "secret", nil, "with `NAME=HOSTGLOB[,HOSTGLOB...]` the command's variable NAME is a random placeholder; the real value (ebpfjail's own NAME: sudo --preserve-env=NAME) takes its place only in HTTPS requests to those hosts, as in --secret ANTHROPIC_API_KEY=api.anthropic.com; sent anywhere else it is denied (repeatable)")
	fs.StringArrayVar(&o.secrets.Files, "secret-file", nil, "with `NAME=PATH` the value of --secret NAME is read from PATH instead (once, before the jail; a trailing newline is dropped)")
	fs.StringArrayVar(&o.secrets.Commands, "secret-cmd", nil, "with `NAME=CMD` the value of --secret NAME is CMD's output, run once with sh -c before the jail, as in --secret-cmd API_KEY='pass show api-key'")
	fs.StringArrayVar(&o.secrets.InBody, "secret-in-body", nil, "swap the placeholder of `NAME` in request bodies too (off: only headers and the URL)")
	fs.StringArrayVar(&o.secrets.Cleartext, "secret-cleartext", nil, "let the real value of `NAME` go out over plain HTTP too (off: only HTTPS)")
	fs.BoolVar(&o.cleanup, "cleanup", false, "remove jails left by an ebpfjail that died, then exit")
	fs.BoolVar(&o.noCleanup, "no-jail-cleanup", false, "keep the jail's cgroup and BPF pins after the command exits, for inspection (its processes are killed, its connections refused); --cleanup removes them")
	fs.BoolVarP(&o.version, "version", "V", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.SetOutput(io.Discard)
	return fs
}

// flagGroups order the options in --help.
var flagGroups = []struct {
	title string
	names []string
}{
	{"Rule (at most one; none denies everything)", []string{"js", "js-file", "sh", "proc", "js-timeout", "ask", "ask-timeout", "test"}},
	{"Network", []string{"no-mitm", "resolve", "allow-local-name", "dns", "dns-upstream", "tcp", "kernel-splice", "allow-unix", "deny-unix", "allow-inbound"}},
	{"Records", []string{"request-log", "log-json", "audit", "verbose"}},
	{"Secrets (the command sees a placeholder, the hosts get the real value)", []string{"secret", "secret-file", "secret-cmd", "secret-in-body", "secret-cleartext"}},
	{"The command", []string{"user", "timeout", "docker-run", "engine"}},
	{"Other modes", []string{"server", "listen", "listen-https", "weak", "cleanup", "no-jail-cleanup", "version", "help"}},
}

func usage(w io.Writer) {
	var o options
	fs := newFlagSet(&o)
	fmt.Fprint(w, usageHead)
	seen := map[string]bool{}
	for i, g := range flagGroups {
		group := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
		group.SortFlags = false
		for _, n := range g.names {
			group.AddFlag(fs.Lookup(n))
			seen[n] = true
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s:\n%s", g.title, group.FlagUsages())
	}
	// A flag missing from the groups still shows, at the end.
	fs.VisitAll(func(f *pflag.Flag) {
		if !seen[f.Name] {
			rest := pflag.NewFlagSet("", pflag.ContinueOnError)
			rest.AddFlag(f)
			fmt.Fprint(w, rest.FlagUsages())
		}
	})
	fmt.Fprint(w, usageTail)
	fmt.Fprintln(w, "\nHelp topics ('ebpfjail help TOPIC'):")
	helptopics.List(w)
}

// parseArgs turns the command line into options, or a usage error.
func parseArgs(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	// --test=URL is httpjail's spelling too; the flag itself takes no value.
	args = splitTestValue(args)
	repeated := cliflags.Once(fs)
	if err := cliflags.ValueBeforeDash(fs, args); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			o.help = true
			return o, nil
		}
		return nil, err
	}
	o.askTimeoutSet = fs.Changed("ask-timeout")
	if err := repeated(); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && rest[0] == "help" {
		return o, parseHelp(o, rest[1:])
	}
	if o.testSet {
		if len(rest) == 1 {
			rest = strings.Fields(rest[0]) // --test "METHOD URL"
		}
		if len(rest) < 1 || len(rest) > 2 {
			return nil, errors.New("--test wants [METHOD] URL")
		}
		o.testArgs = rest
		return o, checkRules(o)
	}
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && rest[0] == "report" {
		return o, parseReport(o, rest[1:])
	}
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && rest[0] == "check" {
		o.check = true
		return o, parseCheck(o, rest[1:])
	}
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && control.Words[rest[0]] {
		o.control = &control.Args{}
		return o, o.control.Parse(rest)
	}
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && (rest[0] == "replay" || rest[0] == "rule-from") {
		return o, parseReplay(o, rest)
	}
	if fs.ArgsLenAtDash() == -1 && len(rest) > 0 && rest[0] == "ca" {
		if len(rest) != 2 || (rest[1] != "export" && rest[1] != "path") {
			return nil, errors.New("ca takes one of: export, path")
		}
		o.ca = rest[1]
		return o, nil
	}
	o.command = rest
	if err := parseDockerRun(o, fs); err != nil {
		return nil, err
	}
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	return o, nil
}

// checkOptions checks the options of the modes that run: a jail,
// --server, --weak and --cleanup.
func checkOptions(o *options) error {
	if err := checkRules(o); err != nil {
		return err
	}
	if o.dnsMode != "fake" && o.dnsMode != "forward" {
		return fmt.Errorf("--dns takes fake or forward, got %q", o.dnsMode)
	}
	for _, g := range o.noMITM {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("--no-mitm %q: %w", g, err)
		}
	}
	if _, err := parseResolve(o.resolve); err != nil {
		return err
	}
	for _, g := range o.localNames {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("--allow-local-name %q: not a host glob", g)
		}
	}
	for _, p := range append(append([]string{}, o.allowUnix...), o.denyUnix...) {
		if !strings.HasPrefix(p, "/") && (!strings.HasPrefix(p, "@") || len(p) < 2) {
			return fmt.Errorf("--allow-unix and --deny-unix take an absolute path or @name, got %q", p)
		}
	}
	if o.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative, got %v", o.timeout)
	}
	if o.dnsUpstream != "" {
		up, err := parseUpstream(o.dnsUpstream)
		if err != nil {
			return err
		}
		o.dnsUpstream = up
	}
	if err := o.secrets.Check(o.noMITM); err != nil {
		return secretError(err)
	}
	if !o.secrets.Empty() && (o.server || o.cleanup) {
		return errors.New("--secret is for a command: --server and --cleanup run none")
	}
	if o.server && (len(o.command) > 0 || o.weak || o.cleanup || o.timeout > 0) {
		return errors.New("--server takes no command, --weak, --cleanup or --timeout")
	}
	if o.inbound && (o.server || o.weak) {
		return errors.New("--allow-inbound is for a jail: --server and --weak receive from anywhere already")
	}
	if o.askTimeoutSet && !o.ask {
		return errors.New("--ask-timeout needs --ask")
	}
	if (o.listen != "" || o.listenTLS != "") && !o.server {
		return errors.New("--listen and --listen-https need --server")
	}
	if o.noCleanup && (o.server || o.weak || o.cleanup) {
		return errors.New("--no-jail-cleanup keeps a jail: it does not go with --server, --weak or --cleanup")
	}
	if o.cleanup && len(o.command) > 0 {
		return errors.New("--cleanup takes no command")
	}
	if !o.help && !o.version && !o.cleanup && !o.server && len(o.command) == 0 {
		return errNoCommand
	}
	return nil
}

// parseCheck reads check's own options: --attack [--target IP]...
func parseCheck(o *options, args []string) error {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.attack, "attack", false, "")
	fs.StringArrayVar(&o.targets, "target", nil, "")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if len(o.targets) > 0 && !o.attack {
		return errors.New("check --target needs --attack")
	}
	if len(o.targets) > 0 {
		if _, _, err := attack.Targets(o.targets); err != nil {
			return err
		}
	}
	return nil
}

// parseUpstream accepts "ip", "ip:port" or "[ipv6]:port" and returns
// "ip:port" (port 53 when none is given).
func parseUpstream(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("--dns-upstream wants an IP address with an optional port, got %q", s)
	}
	return ap.String(), nil
}

// splitTestValue turns "--test=VALUE" into "--test VALUE" (before any
// "--", which ends ebpfjail's own options).
func splitTestValue(args []string) []string {
	out := make([]string, 0, len(args)+1)
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if v, ok := strings.CutPrefix(a, "--test="); ok {
			out = append(out, "--test", v)
			continue
		}
		out = append(out, a)
	}
	return out
}

// errNoCommand is the one usage error whose hint is where the command goes.
var errNoCommand = errors.New("no command to run")

// parseHelp reads `help [TOPIC]`.
func parseHelp(o *options, args []string) error {
	o.help = true
	if len(args) > 1 {
		return fmt.Errorf("help takes one topic, got %q", strings.Join(args, " "))
	}
	if len(args) == 1 {
		if _, ok := helptopics.Text(args[0]); !ok {
			return fail(exitUsage, fmt.Errorf("no help topic %q", args[0]), "topics: "+strings.Join(helptopics.Names(), ", "))
		}
		o.topic = args[0]
	}
	return nil
}

// usageError gives a usage error its hint: about the flag it names, or
// where the command goes when it is missing.
func usageError(err error) *exitError {
	var e *exitError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, errNoCommand):
		return fail(exitUsage, err, "put the command after --, as in: ebpfjail -- curl https://example.com")
	}
	if h := subcommandHint(err.Error()); h != "" {
		return fail(exitUsage, err, h)
	}
	if h := cliflags.Hint(newFlagSet(&options{}), err.Error()); h != "" {
		return fail(exitUsage, err, h)
	}
	return fail(exitUsage, err, "'ebpfjail --help' lists the options; 'ebpfjail help TOPIC' explains one")
}

// usageLine splits a "Usage:" line of usageHead into its syntax and text.
var usageLine = regexp.MustCompile(`^  (ebpfjail (\S+).*?)\s{2,}`)

// subcommandHint is the usage of the subcommand a message starts with
// ("check: ...", "ca takes ..."), from usageHead; "" for none.
func subcommandHint(msg string) string {
	word := strings.TrimSuffix(strings.Fields(msg + " x")[0], ":")
	var uses []string
	for _, l := range strings.Split(usageHead, "\n") {
		if m := usageLine.FindStringSubmatch(l); m != nil && m[2] == word && !strings.HasPrefix(word, "-") {
			uses = append(uses, m[1])
		}
	}
	if word == "help" {
		uses = append(uses, "ebpfjail help [TOPIC]")
	}
	if len(uses) == 0 {
		return ""
	}
	return "usage: " + strings.Join(uses, "; ")
}

// checkRules enforces at most one rule flag, and a rule file or program
// that exists.
func checkRules(o *options) error {
	var given []string
	for _, r := range []struct{ flag, v string }{{"--js", o.js}, {"--js-file", o.jsFile}, {"--sh", o.sh}, {"--proc", o.proc}} {
		if r.v != "" {
			given = append(given, r.flag)
		}
	}
	if len(given) > 1 {
		return fail(exitUsage, fmt.Errorf("%s and %s both give a rule", given[0], given[1]),
			"give at most one of --js, --js-file, --sh and --proc (none denies every request)")
	}
	if len(given) == 1 {
		if err := rules.CheckSource(given[0], o.js+o.jsFile+o.sh+o.proc); err != nil {
			return err
		}
	}
	if o.jsTimeout <= 0 || o.askTimeout <= 0 {
		return fmt.Errorf("--js-timeout and --ask-timeout must be positive, got %v and %v", o.jsTimeout, o.askTimeout)
	}
	return nil
}

// parseResolve reads --resolve HOST:ADDR entries (curl's HOST:PORT:ADDR
// form is accepted too; the port is ignored: a pin is per name).
func parseResolve(entries []string) (map[string][]netip.Addr, error) {
	pins := map[string][]netip.Addr{}
	for _, e := range entries {
		host, addr, ok := strings.Cut(e, ":")
		a, err := netip.ParseAddr(strings.Trim(addr, "[]"))
		if err != nil {
			if p, rest, ok2 := strings.Cut(addr, ":"); ok2 && isPort(p) {
				a, err = netip.ParseAddr(strings.Trim(rest, "[]"))
			}
		}
		if !ok || host == "" || err != nil {
			return nil, fmt.Errorf("--resolve wants HOST:ADDR, got %q", e)
		}
		host = hostname.Fold(host)
		pins[host] = append(pins[host], a.Unmap())
	}
	return pins, nil
}

func isPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

func version() string {
	v, rev := "devel", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if rev != "" {
		return fmt.Sprintf("ebpfjail %s (%s)", v, rev)
	}
	return "ebpfjail " + v
}

func main() {
	os.Exit(mainStatus(os.Args[1:]))
}

// mainStatus runs ebpfjail and returns the process exit status.
func mainStatus(args []string) int {
	// A reader that goes away (ebpfjail -v 2>&1 | head) must not kill
	// ebpfjail before it has torn its jail down: with SIGPIPE notified,
	// writes to a broken stdout or stderr just fail. (A caught signal is
	// reset by exec: the command still gets SIGPIPE's default.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if status, ok := hiddenCommand(args); ok {
		return status
	}
	o, err := parseArgs(args)
	if err != nil {
		printError(os.Stderr, usageError(err))
		return exitUsage
	}
	switch {
	case o.help && o.topic != "":
		t, _ := helptopics.Text(o.topic)
		fmt.Print(t)
		return 0
	case o.help:
		usage(os.Stdout)
		return 0
	case o.version:
		fmt.Println(version())
		return 0
	}
	log := supervisor.NewLogger(stderr, o.verbose)
	stopProfile := profile.Start(os.Stderr)
	defer stopProfile()
	var status int
	start := time.Now()
	switch {
	case o.report != nil:
		status, err = runReport(os.Stdout, o.report)
	case o.check && o.attack:
		status, err = runAttack(os.Stdout, o, log)
	case o.check:
		status, err = runCheck(os.Stdout)
	case o.control != nil:
		status, err = control.Run(o.control, os.Stdout, os.Stderr)
	case o.ca != "":
		status, err = runCA(os.Stdout, o.ca)
	case o.replay != nil:
		status, err = runReplay(os.Stdout, o, log)
	case o.testSet:
		status, err = runTest(os.Stdout, o, log)
	case o.server:
		status, err = runServer(o, log)
	case o.weak:
		status, err = runWeak(o, log)
	case o.cleanup:
		status, err = runCleanup(os.Stdout, log)
	default:
		status, err = runJail(o, log)
	}
	if err != nil {
		var e *exitError
		if !errors.As(err, &e) {
			e = fail(exitFailure, err)
		}
		if he := (*control.HintError)(nil); errors.As(err, &he) {
			e = fail(exitFailure, he.Err, he.Hint)
		}
		printError(os.Stderr, e)
		return e.code
	}
	if status == exitTimeout && o.timeout > 0 && time.Since(start).Seconds() >= o.timeout {
		fmt.Fprintf(stderr, "ebpfjail: timeout: stopped the command after %v s\n", o.timeout)
	}
	return status
}
