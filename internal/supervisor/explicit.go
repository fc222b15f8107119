package supervisor

import (
	"cmp"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// Explicit is an explicit HTTP/CONNECT proxy (--server, --weak) with its
// rule and records.
type Explicit struct {
	Proxy  *proxy.Proxy
	CA     *tlsca.CA
	out    *Outputs
	engine rules.Engine
	once   sync.Once
}

// StartExplicit opens the records, starts the rule (as this process's
// user), loads the CA of o.CADir and listens on addr, and on tlsAddr too
// unless it is empty (proxy.Config.ExplicitTLS). There is no kernel
// record, so the rule sees no r.proc.
func StartExplicit(o Options, addr, tlsAddr string, log *slog.Logger) (*Explicit, error) {
	out, err := OpenOutputs(o.Records)
	if err != nil {
		return nil, err
	}
	e := &Explicit{out: out}
	if o.Rule.Ask && o.Warn != nil {
		o.Warn("--ask holds requests only in a jail (they are asked on its control socket); here a request the rule denies is denied")
	}
	me := &jail.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if e.engine, err = o.Rule.Engine(me, log); err != nil {
		out.Close()
		return nil, &Error{Step: StepRule, Err: err}
	}
	if e.CA, err = LoadCA(cmp.Or(o.CADir, CADir()), log); err != nil {
		e.engine.Close()
		out.Close()
		return nil, &Error{Step: StepCA, Err: err}
	}
	c := o.Config
	e.Proxy, err = proxy.Listen(proxy.Config{
		Logger: log.With("component", "proxy"), Explicit: addr, ExplicitTLS: tlsAddr,
		Rules: e.engine, CA: e.CA, NoMITM: c.NoMITM, Resolver: &proxy.Resolver{Pins: c.Resolve, LocalNames: c.LocalNames},
		TCP: c.TCP, Events: out.Emit, Secrets: c.Secrets,
	})
	if err != nil {
		e.engine.Close()
		out.Close()
		return nil, &Error{Step: StepListen, Err: err}
	}
	return e, nil
}

// Stop closes the proxy, waiting for its handlers (which may still write
// an event), and the rule; it may be called twice.
func (e *Explicit) Stop() {
	e.once.Do(func() { e.Proxy.Close(); e.engine.Close() })
}

// Finish stops, then writes the summary and closes the records.
func (e *Explicit) Finish(status int) {
	e.Stop()
	e.out.Finish(status)
}

// Serve runs an explicit proxy on addr (HTTP and CONNECT) and tlsAddr
// (the same, and direct TLS) until SIGINT or SIGTERM and returns 128+N for
// signal N. ready gets the addresses it listens on.
func Serve(o Options, addr, tlsAddr string, ready func(http, https net.Addr), log *slog.Logger) (int, error) {
	e, err := StartExplicit(o, addr, tlsAddr, log)
	if err != nil {
		return 0, err
	}
	ready(e.Proxy.Addr(), e.Proxy.TLSAddr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	sig := <-sigs
	e.Finish(0)
	return 128 + int(sig.(syscall.Signal)), nil
}

// RunWeak runs o's command without root and without kernel steering, as
// httpjail's weak mode: it is only told to use an explicit proxy (proxy
// variables). It returns the status as Supervisor.Run does. Call it
// before opening any file: the command inherits only 0-2.
func RunWeak(o Options, log *slog.Logger) (int, error) {
	if err := jail.CloseInheritedFDs(); err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, Forwarded...)
	defer signal.Stop(sigs)
	e, err := StartExplicit(o, "127.0.0.1:0", "", log)
	if err != nil {
		return 0, err
	}
	defer e.Stop()
	trustEnv, removeTrust, err := TrustFiles(e.CA, o.Config.Env, tlsca.DefaultCacheDir, log)
	if err != nil {
		e.out.Close()
		return 0, err
	}
	defer removeTrust()
	status, err := runWeak(o.Config, trustEnv, e.Proxy, sigs, log)
	o.Gate.Release() // the command is gone: its terminal is ours again
	if err != nil {
		e.out.Close()
		return 0, err
	}
	e.Finish(status) // in-flight handlers write their events before the records close
	return status, nil
}

// runWeak starts the command with the trust and proxy variables and waits
// for it.
func runWeak(c Config, trustEnv []string, p *proxy.Proxy, sigs <-chan os.Signal, log *slog.Logger) (int, error) {
	proxyURL := "http://" + p.Addr().String()
	noProxy := "localhost,127.0.0.1,::1"
	if v := os.Getenv("NO_PROXY"); v != "" {
		noProxy = v + "," + noProxy
	}
	env := WithEnv(c.Env, append(append(trustEnv, c.Secrets.Env()...),
		"HTTP_PROXY="+proxyURL, "http_proxy="+proxyURL,
		"HTTPS_PROXY="+proxyURL, "https_proxy="+proxyURL,
		"NO_PROXY="+noProxy, "no_proxy="+noProxy))
	fg := c.Stdin != nil && Foreground(c.Stdin)
	c.Gate.Hold() // from before its exec: the command may draw at once
	proc, err := jail.StartUnjailed(jail.Command{
		Args: c.Command, Env: env, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, Foreground: fg,
	})
	if err != nil {
		return 0, &Error{Step: StepStart, Err: err}
	}
	stats := func() {
		if c.Stats != nil {
			WriteStats(c.Stats, p.Active())
		}
	}
	var tty *os.File
	if fg {
		tty = c.Stdin
	}
	return Wait(proc.Pid, tty, sigs, c.Timeout, func() { unix.Kill(-proc.Pid, unix.SIGKILL) }, stats, log), nil
}
