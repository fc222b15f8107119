package supervisor

import (
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// Rule names the rule: at most one of JS, JSFile, Sh and Proc; none
// denies every request.
type Rule struct {
	JS        string        // JavaScript code
	JSFile    string        // a file of JavaScript code
	Sh        string        // a script run per request
	Proc      string        // a long-running program, a line per request
	JSTimeout time.Duration // a JavaScript rule's limit per request
	// Reload re-reads JSFile on change: only for an explicit proxy, since
	// a jailed command must not be able to rewrite its own policy.
	Reload bool
	Audit  bool // allow every request, asking the rule for the record
	// Ask holds a request the rule denies for a person's answer (watch,
	// answer) for up to AskTimeout, then denies it; only in a jail.
	Ask        bool
	AskTimeout time.Duration
}

// Engine compiles or starts the rule; Sh and Proc run as user, never as
// root on the command's behalf. Build it before anything else happens, so
// a bad rule stops ebpfjail before the command could run.
func (r Rule) Engine(user *jail.User, log *slog.Logger) (rules.Engine, error) {
	log = log.With("component", "rule")
	cred := &syscall.Credential{Uid: user.UID, Gid: user.GID, Groups: user.Groups}
	var e rules.Engine
	var err error
	switch {
	case r.JS != "":
		e, err = rules.NewJS(r.JS, "--js", rules.JSOptions{Timeout: r.JSTimeout, Logger: log})
	case r.JSFile != "":
		e, err = rules.NewJSFile(r.JSFile, rules.JSOptions{Timeout: r.JSTimeout, Logger: log}, r.Reload)
	case r.Sh != "":
		e, err = rules.NewShell(r.Sh, rules.ShellOptions{Logger: log, Credential: cred, Env: os.Environ()})
	case r.Proc != "":
		e, err = rules.NewLineProcess(r.Proc, rules.ProcOptions{Logger: log, Credential: cred, Env: os.Environ()})
	default:
		e = rules.DenyAll()
		if r.Audit {
			// An audit alone: allow and record everything.
			return Audit(nil), nil
		}
	}
	if err != nil {
		return nil, err
	}
	if r.Audit {
		return Audit(e), nil
	}
	return e, nil
}
