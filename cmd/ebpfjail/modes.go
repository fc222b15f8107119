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
	"github.com/ebpfjail/ebpfjail/internal/supervisor"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// caDir is where the CA lives: root's in /var/lib, anyone else's (--weak,
// --server without root) in their own config directory.
func caDir() string {
	if os.Geteuid() == 0 {
		return tlsca.DefaultDir
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "ebpfjail", "ca")
	}
	return filepath.Join(os.Getenv("HOME"), ".config", "ebpfjail", "ca")
}

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

// startExplicit starts the rule, the CA and an explicit proxy on addr.
func startExplicit(o *options, log *slog.Logger, out *supervisor.Outputs, addr string) (*proxy.Proxy, *tlsca.CA, func(), error) {
	me := &jail.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	engine, err := buildEngine(o, log, me)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := tlsca.LoadOrCreate(caDir())
	if err != nil {
		engine.Close()
		return nil, nil, nil, fail(exitFailure, err, "ebpfjail keeps its CA in "+caDir())
	}
	if note := unrestrictedCA(ca, caDir()); note != "" {
		log.Info(note)
	}
	pins, err := parseResolve(o.resolve)
	if err != nil {
		engine.Close()
		return nil, nil, nil, fail(exitUsage, err)
	}
	p, err := proxy.Listen(proxy.Config{
		Logger: log.With("component", "proxy"), Explicit: addr,
		Rules: engine, CA: ca, NoMITM: o.noMITM, Resolver: &proxy.Resolver{Pins: pins, LocalNames: o.localNames},
		TCP: o.tcp, Events: out.Emit,
	})
	if err != nil {
		engine.Close()
		return nil, nil, nil, fail(exitFailure, err, "pick another address with --listen")
	}
	var once sync.Once
	return p, ca, func() { once.Do(func() { p.Close(); engine.Close() }) }, nil
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
	p, _, stop, err := startExplicit(o, log, out, addr)
	if err != nil {
		out.Close()
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "ebpfjail: proxy listening on %s (HTTP and CONNECT; CA: %s)\n", p.Addr(), filepath.Join(caDir(), tlsca.CertFile))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	sig := <-sigs
	stop()
	out.Finish(0)
	return 128 + int(sig.(syscall.Signal)), nil
}

// runWeak is --weak: no root and no kernel steering; the command is only
// told to use the proxy (proxy variables), as httpjail's weak mode.
func runWeak(o *options, log *slog.Logger) (int, error) {
	if err := jail.CloseInheritedFDs(); err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, supervisor.Forwarded...)
	defer signal.Stop(sigs)
	out, err := openOutputs(o)
	if err != nil {
		return 0, err
	}
	p, ca, stop, err := startExplicit(o, log, out, "127.0.0.1:0")
	if err != nil {
		out.Close()
		return 0, err
	}
	defer stop()
	trustEnv, removeTrust, err := supervisor.TrustFiles(ca, log)
	if err != nil {
		out.Close()
		return 0, err
	}
	defer removeTrust()
	proxyURL := "http://" + p.Addr().String()
	noProxy := "localhost,127.0.0.1,::1"
	if v := os.Getenv("NO_PROXY"); v != "" {
		noProxy = v + "," + noProxy
	}
	env := supervisor.WithEnv(os.Environ(), append(trustEnv,
		"HTTP_PROXY="+proxyURL, "http_proxy="+proxyURL,
		"HTTPS_PROXY="+proxyURL, "https_proxy="+proxyURL,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy))
	fg := supervisor.Foreground(os.Stdin)
	proc, err := jail.StartUnjailed(jail.Command{
		Args: o.command, Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Foreground: fg,
	})
	if err != nil {
		out.Close()
		return 0, startError(o, err, "you")
	}
	stats := func() { supervisor.WriteStats(os.Stderr, p.Active()) }
	var tty *os.File
	if fg {
		tty = os.Stdin
	}
	timeout := time.Duration(o.timeout * float64(time.Second))
	status := supervisor.Wait(proc.Pid, tty, sigs, timeout, func() { unix.Kill(-proc.Pid, unix.SIGKILL) }, stats, log)
	stop() // in-flight handlers write their events before the logs close
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
