package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// serverAddr is a --server listen address: the flag's, else the httpjail
// variable's, else httpjail's default (supervisor.BindAddr).
func serverAddr(flag, value, variable, port string) (string, error) {
	source := flag
	if value == "" {
		source, value = variable, os.Getenv(variable)
	}
	a, err := supervisor.BindAddr(value, port)
	if err != nil {
		return "", fail(exitUsage, fmt.Errorf("%s: %w", source, err), "--listen and --listen-https take ip:port, :port, port or ip, as httpjail's HTTPJAIL_HTTP_BIND and HTTPJAIL_HTTPS_BIND")
	}
	return a, nil
}

// supervised are the options as the supervisor takes them.
func supervised(o *options) supervisor.Options {
	pins, _ := parseResolve(o.resolve) // checked by parseArgs
	var gate *report.Gate
	if quiet(o) {
		gate = stderr
	}
	return supervisor.Options{
		Rule: supervisor.Rule{JS: o.js, JSFile: o.jsFile, Sh: o.sh, Proc: o.proc, JSTimeout: o.jsTimeout, Reload: o.server, Audit: o.audit, Ask: o.ask, AskTimeout: o.askTimeout},
		Records: supervisor.Records{
			RequestLog: o.requestLog, JSON: o.logJSON, Audit: o.audit, Verbose: o.verbose,
			Quiet: gate != nil, Stdout: os.Stdout, Stderr: stderr, Warn: warn,
		},
		Config: supervisor.Config{
			Command: o.command, Env: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			FakeDNS: o.dnsMode == "fake", DNSUpstream: o.dnsUpstream, Resolve: pins, LocalNames: o.localNames,
			NoMITM: o.noMITM, TCP: o.tcp, Splice: o.kernSplice, Inbound: o.inbound, AllowUnix: o.allowUnix, DenyUnix: o.denyUnix,
			Timeout: time.Duration(o.timeout * float64(time.Second)), KeepJail: o.noCleanup, Secrets: o.secretSet,
			Warn: warn, Stats: os.Stderr, Gate: gate,
		},
	}
}

// buildEngine compiles or starts the rule before anything else happens, so
// a bad rule stops ebpfjail before the command could run.
func buildEngine(o *options, log *slog.Logger, user *jail.User) (rules.Engine, error) {
	e, err := supervised(o).Rule.Engine(user, log)
	if err != nil {
		return nil, runError(o, &supervisor.Error{Step: supervisor.StepRule, Err: err}, "")
	}
	return e, nil
}

// runServer is --server: an explicit HTTP/HTTPS proxy until interrupted.
func runServer(o *options, log *slog.Logger) (int, error) {
	addr, err := serverAddr("--listen", o.listen, "HTTPJAIL_HTTP_BIND", supervisor.HTTPPort)
	if err != nil {
		return 0, err
	}
	tlsAddr, err := serverAddr("--listen-https", o.listenTLS, "HTTPJAIL_HTTPS_BIND", supervisor.HTTPSPort)
	if err != nil {
		return 0, err
	}
	status, err := supervisor.Serve(supervised(o), addr, tlsAddr, func(a, tlsA net.Addr) {
		fmt.Fprintf(os.Stderr, "ebpfjail: proxy listening on %s (HTTP and CONNECT) and %s (CONNECT and direct TLS); CA: %s\n", a, tlsA, filepath.Join(supervisor.CADir(), tlsca.CertFile))
	}, log)
	return status, runError(o, err, supervisor.CADir())
}

// loadSecrets reads the secrets' values before anything else is made,
// so that a missing one stops ebpfjail before the command could run.
func loadSecrets(o *options) (err error) {
	o.secretSet, err = secrets.Load(o.secrets, o.noMITM, secrets.LoadOptions{Stdin: os.Stdin, Warn: warn})
	return secretError(err)
}

// secretError gives a secret that cannot be had its exit status and hint.
func secretError(err error) error {
	var se *secrets.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.Usage {
		return fail(exitUsage, se.Err, se.Hint)
	}
	return fail(exitFailure, se.Err, se.Hint)
}

// runWeak is --weak: no root and no kernel steering; the command is only
// told to use the proxy (proxy variables), as httpjail's weak mode.
func runWeak(o *options, log *slog.Logger) (int, error) {
	if err := loadSecrets(o); err != nil {
		return 0, err
	}
	defer o.secretSet.Close()
	status, err := supervisor.RunWeak(supervised(o), log)
	return status, runError(o, err, supervisor.CADir())
}

// stepHints are the status and hint of a failed step that needs no more.
var stepHints = map[supervisor.Step]struct {
	code int
	hint string
}{
	supervisor.StepRule:       {exitFailure, "fix the rule; 'ebpfjail --js RULE --test URL' tries one without a jail"},
	supervisor.StepRequestLog: {exitFailure, "--request-log takes a file ebpfjail can append to"},
	supervisor.StepJSONLog:    {exitFailure, "--log-json takes a file ebpfjail can append to, or - for standard output"},
	supervisor.StepListen:     {exitFailure, "pick another address with --listen"},
	supervisor.StepDenyUnix:   {exitUsage, "--deny-unix takes an absolute path or @name"},
	supervisor.StepJail:       {exitFailure, "run 'ebpfjail check' to see what this host lacks"},
	supervisor.StepAttach:     {exitFailure, "run 'ebpfjail check' to see which program this kernel cannot attach"},
	supervisor.StepUnixHooks:  {exitFailure, "they come with Linux 6.7; without them ebpfjail can open no single abstract socket, only refuse them all (leave out --allow-unix @NAME)"},
	supervisor.StepAllowUnix:  {exitUsage, "--allow-unix takes an absolute path or @name"},
}

// runError gives a supervisor's failure its exit status and hints; caDir
// is where the CA was to be.
func runError(o *options, err error, caDir string) error {
	var se *supervisor.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Step {
	case supervisor.StepUser:
		if errors.Is(se.Err, jail.ErrRootChild) {
			return fail(exitFailure, errors.New("refusing to run the command as root: a root process can leave the jail"),
				"run ebpfjail through sudo from your own account, or pick a user with --user USER",
				"--user root runs it as root anyway")
		}
		return fail(exitFailure, se.Err, "--user takes a user name or a numeric uid")
	case supervisor.StepCA:
		return fail(exitFailure, se.Err, "ebpfjail keeps its CA in "+caDir)
	case supervisor.StepPaths:
		return pathsError(se.Err)
	case supervisor.StepLoad:
		return loadError(o, se.Err)
	case supervisor.StepStart:
		return startError(o, se.Err, cmp.Or(se.User, "you"))
	}
	if h, ok := stepHints[se.Step]; ok {
		return fail(h.code, se.Err, h.hint)
	}
	return fail(exitFailure, se.Err)
}

// startError turns a failure to start the command into the documented
// exit status and message.
func startError(o *options, err error, user string) error {
	switch {
	case errors.Is(err, jail.ErrNotFound):
		if why := supervisor.SudoNotFound(o.command[0], os.Environ()); why != "" {
			return fail(exitNotFound, fmt.Errorf("command not found: %s (%s)", o.command[0], why), supervisor.SudoPathFix)
		}
		return fail(exitNotFound, fmt.Errorf("command not found: %s", o.command[0]), "check its name and the PATH")
	case errors.Is(err, jail.ErrNotExecutable):
		return fail(exitNotExecutable, fmt.Errorf("command not executable: %s", o.command[0]),
			fmt.Sprintf("it must be executable by %s, the user it runs as", user))
	case errors.Is(err, jail.ErrMask):
		return fail(exitFailure, err, "--allow-unix PATH leaves a socket on the default list unmasked; 'ebpfjail check' tests mount namespaces")
	}
	return fail(exitFailure, err)
}
