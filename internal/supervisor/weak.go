package supervisor

import (
	"log/slog"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
)

// ListenExplicit starts an explicit HTTP/CONNECT proxy on addr (--server,
// --weak) deciding by c.Rules; there is no kernel record, so the rule sees
// no r.proc. Of c it uses the rule, the CA, the events and the upstream
// settings.
func ListenExplicit(c Config, addr string, log *slog.Logger) (*proxy.Proxy, error) {
	return proxy.Listen(proxy.Config{
		Logger: log.With("component", "proxy"), Explicit: addr,
		Rules: c.Rules, CA: c.CA, NoMITM: c.NoMITM, Resolver: &proxy.Resolver{Pins: c.Resolve, LocalNames: c.LocalNames},
		TCP: c.TCP, Events: c.Event,
	})
}

// Weak runs a command without root and without kernel steering: it is
// only told to use an explicit proxy (proxy variables), as httpjail's weak
// mode.
type Weak struct{ sigs chan os.Signal }

// BeginWeak catches the Forwarded signals from now on. Call it before
// opening any file: the command inherits only 0-2.
func BeginWeak() (*Weak, error) {
	if err := jail.CloseInheritedFDs(); err != nil {
		return nil, err
	}
	w := &Weak{sigs: make(chan os.Signal, 4)}
	signal.Notify(w.sigs, Forwarded...)
	return w, nil
}

// Close stops catching the signals.
func (w *Weak) Close() { signal.Stop(w.sigs) }

// Run runs c.Command as this process's user with the proxy variables
// pointing at p, and returns its exit status as Supervisor.Run does. A
// failure to start it is an *Error of StepStart.
func (w *Weak) Run(c Config, p *proxy.Proxy, log *slog.Logger) (int, error) {
	proxyURL := "http://" + p.Addr().String()
	noProxy := "localhost,127.0.0.1,::1"
	if v := os.Getenv("NO_PROXY"); v != "" {
		noProxy = v + "," + noProxy
	}
	env := WithEnv(c.Env, []string{
		"HTTP_PROXY=" + proxyURL, "http_proxy=" + proxyURL,
		"HTTPS_PROXY=" + proxyURL, "https_proxy=" + proxyURL,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy})
	fg := c.Stdin != nil && Foreground(c.Stdin)
	proc, err := jail.StartUnjailed(jail.Command{
		Args: c.Command, Env: env, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, Foreground: fg,
	})
	if err != nil {
		return 0, &Error{StepStart, err}
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
	return Wait(proc.Pid, tty, w.sigs, c.Timeout, func() { unix.Kill(-proc.Pid, unix.SIGKILL) }, stats, log), nil
}
