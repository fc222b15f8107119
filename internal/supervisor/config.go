package supervisor

import (
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/control"
	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
	"github.com/ebpfjail/ebpfjail/internal/report"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Options are a whole run: the rule, the records, and the command and
// services; Jail, RunWeak and Serve fill in Config's rule, CA, events and
// user themselves.
type Options struct {
	Rule    Rule
	Records Records
	// CADir is where an explicit proxy's CA lives; "" is CADir(). A jail
	// always uses root's, tlsca.DefaultDir.
	CADir string
	Config
}

// Config is one command to run: in a jail (Run) or told to use an
// explicit proxy (RunWeak), with the rule and the services' settings.
type Config struct {
	Command []string // Command[0] is looked up in Env's PATH
	// Docker, if set, replaces Command: the engine's client runs the
	// container (`run` with these arguments) with its processes in the
	// jail's cgroup; Engine is that client.
	Docker *container.Args
	Engine container.Engine
	Env    []string // the command's environment, trust variables included
	User   *jail.User
	// The command's standard files; with Stdin the terminal in our
	// foreground, the command gets the terminal.
	Stdin, Stdout, Stderr *os.File

	Rules rules.Engine      // decides every request; required
	CA    proxy.CertSource  // the interception CA; required
	Event func(event.Event) // every event; required
	// Done, if set, gets the exit status after the jail is torn down and
	// the services are stopped (their last events written), before Run
	// returns. It is not called when the command never started.
	Done func(status int)
	// Control, if set, gets every event and serves them on the jail's
	// control socket (watch, ps); Run ends it with the exit status.
	Control *control.Hub

	FakeDNS     bool                    // answer lookups with stand-in addresses, forward nothing
	DNSUpstream string                  // resolver ip:port; "" reads /etc/resolv.conf
	Resolve     map[string][]netip.Addr // host name pins for upstream connections
	LocalNames  []string                // globs of names that may lead to this host
	NoMITM      []string                // globs of names whose TLS passes unopened
	TCP         bool                    // the rule decides non-HTTP TCP
	Splice      bool                    // allowed tunnels with no limit go to the kernel splice
	Inbound     bool                    // the command may receive from other hosts
	AllowUnix   []string                // sockets taken off the deny list; @NAME: abstract ones
	DenyUnix    []string                // sockets denied on top of the default list
	Timeout     time.Duration           // 0: none
	// RefusedSockets reports every socket() the jail is refused, whoever
	// refused it (a host-wide syscall tracepoint while the jail runs);
	// without it, those the jail's socket hook refuses.
	RefusedSockets bool
	// Secrets, if set, are the command's placeholders (they replace any
	// real value in Env) and what the proxy swaps them for.
	Secrets *secrets.Set

	Warn  func(msg string) // a warning for the user; required
	Stats io.Writer        // where the stats line goes on SIGUSR1; nil: nowhere
	// KeepJail leaves the jail's cgroup and pinned programs after the run
	// (--no-jail-cleanup), for inspection; --cleanup removes them.
	KeepJail bool

	containerEnv []string // the trust and secret variables alone, for a container
	// Gate, if set, is ebpfjail's stderr on a terminal the command shares:
	// held from the command's start until it has exited and the jail is
	// gone, so ebpfjail's messages wait instead of drawing on its screen.
	Gate *report.Gate
}
