package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// serverAddr turns --listen (or HTTPJAIL_HTTP_BIND) into a listen address:
// "ip:port", ":port" or "port" (all interfaces), "ip" (port 8080), or
// nothing (127.0.0.1:8080), as httpjail reads its bind variable.
func serverAddr(flag string) (string, error) {
	v := flag
	if v == "" {
		v = os.Getenv("HTTPJAIL_HTTP_BIND")
	}
	switch {
	case v == "":
		return "127.0.0.1:8080", nil
	case isPort(v):
		return "0.0.0.0:" + v, nil
	case strings.HasPrefix(v, ":") && isPort(v[1:]):
		return "0.0.0.0" + v, nil
	}
	if host, port, err := net.SplitHostPort(v); err == nil && net.ParseIP(host) != nil && (isPort(port) || port == "0") {
		return v, nil
	}
	if ip := net.ParseIP(strings.Trim(v, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "8080"), nil
	}
	return "", fmt.Errorf("--listen wants ip:port, :port, port or ip, got %q", v)
}

// config is the part of a supervisor's configuration the modes share.
func config(o *options, engine rules.Engine, ca proxy.CertSource, out *supervisor.Outputs) supervisor.Config {
	pins, _ := parseResolve(o.resolve) // checked by parseArgs
	return supervisor.Config{
		Command: o.command, Env: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Rules: engine, CA: ca, Event: out.Emit,
		FakeDNS: o.dnsMode == "fake", DNSUpstream: o.dnsUpstream, Resolve: pins, LocalNames: o.localNames,
		NoMITM: o.noMITM, TCP: o.tcp, Inbound: o.inbound, AllowUnix: o.allowUnix, DenyUnix: o.denyUnix,
		Timeout: time.Duration(o.timeout * float64(time.Second)),
		Warn:    warn, Stats: os.Stderr,
	}
}

// explicit is a running explicit proxy, with its rule and CA.
type explicit struct {
	p    *proxy.Proxy
	ca   *tlsca.CA
	c    supervisor.Config
	stop func() // closes the proxy and the rule; may be called twice
}

// startExplicit starts the rule, the CA and an explicit proxy on addr.
func startExplicit(o *options, log *slog.Logger, out *supervisor.Outputs, addr string) (*explicit, error) {
	me := &jail.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	engine, err := buildEngine(o, log, me)
	if err != nil {
		return nil, err
	}
	ca, err := supervisor.LoadCA(supervisor.CADir(), log)
	if err != nil {
		engine.Close()
		return nil, fail(exitFailure, err, "ebpfjail keeps its CA in "+supervisor.CADir())
	}
	e := &explicit{ca: ca, c: config(o, engine, ca, out)}
	if e.p, err = supervisor.ListenExplicit(e.c, addr, log); err != nil {
		engine.Close()
		return nil, fail(exitFailure, err, "pick another address with --listen")
	}
	var once sync.Once
	e.stop = func() { once.Do(func() { e.p.Close(); engine.Close() }) }
	return e, nil
}

// runServer is --server: an explicit HTTP/HTTPS proxy until interrupted.
func runServer(o *options, log *slog.Logger) (int, error) {
	addr, err := serverAddr(o.listen)
	if err != nil {
		return 0, fail(exitUsage, err)
	}
	out, err := openOutputs(o)
	if err != nil {
		return 0, err
	}
	e, err := startExplicit(o, log, out, addr)
	if err != nil {
		out.Close()
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "ebpfjail: proxy listening on %s (HTTP and CONNECT; CA: %s)\n", e.p.Addr(), filepath.Join(supervisor.CADir(), tlsca.CertFile))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	sig := <-sigs
	e.stop()
	out.Finish(0)
	return 128 + int(sig.(syscall.Signal)), nil
}

// runWeak is --weak: no root and no kernel steering; the command is only
// told to use the proxy (proxy variables), as httpjail's weak mode.
func runWeak(o *options, log *slog.Logger) (int, error) {
	weak, err := supervisor.BeginWeak()
	if err != nil {
		return 0, err
	}
	defer weak.Close()
	out, err := openOutputs(o)
	if err != nil {
		return 0, err
	}
	e, err := startExplicit(o, log, out, "127.0.0.1:0")
	if err != nil {
		out.Close()
		return 0, err
	}
	defer e.stop()
	trustEnv, removeTrust, err := supervisor.TrustFiles(e.ca, log)
	if err != nil {
		out.Close()
		return 0, err
	}
	defer removeTrust()
	c := e.c
	c.Env = supervisor.WithEnv(c.Env, trustEnv)
	status, err := weak.Run(c, e.p, log)
	if err != nil {
		out.Close()
		return 0, startError(o, errors.Unwrap(err), "you")
	}
	e.stop() // in-flight handlers write their events before the logs close
	out.Finish(status)
	return status, nil
}

// startError turns a failure to start the command into the documented
// exit status and message.
func startError(o *options, err error, user string) error {
	switch {
	case errors.Is(err, jail.ErrNotFound):
		return fail(exitNotFound, fmt.Errorf("command not found: %s", o.command[0]), "check its name and the PATH")
	case errors.Is(err, jail.ErrNotExecutable):
		return fail(exitNotExecutable, fmt.Errorf("command not executable: %s", o.command[0]),
			fmt.Sprintf("it must be executable by %s, the user it runs as", user))
	case errors.Is(err, jail.ErrMask):
		return fail(exitFailure, err, "--allow-unix PATH leaves a socket on the default list unmasked; 'ebpfjail check' tests mount namespaces")
	}
	return fail(exitFailure, err)
}
