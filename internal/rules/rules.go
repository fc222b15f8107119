package rules

import "context"

// Proc is the process behind a request, as the kernel recorded it at
// connect() time: what it was then, even if it has since exited or exec'd
// another program. What each field can prove to a rule:
//
//   - UID: the real uid; the jailed process cannot change it (no setuid
//     program regains privileges in the jail). Solid.
//   - Exe: the program the process runs, recorded when it exec'd it (a
//     forked child runs its parent's): the path the kernel opened, as
//     named (absolute after a PATH search; relative stays relative;
//     symlinks unresolved; the interpreter for a #! script), cut at 255
//     bytes. LD_PRELOAD and ptrace change the code that runs, not Exe, and
//     any program the user can write (a copy of a binary under another
//     name) gets its own path: trust Exe to allow a known path, not to deny
//     one. "" when unknown (the kernel kept no record).
//   - Comm: the kernel's process name, which the process sets at will
//     (prctl PR_SET_NAME, or exec under any name): a label, not a proof.
//   - PID, PPID: the process and its parent at connect(); both may be
//     gone, and their numbers reused, by the time the rule runs.
type Proc struct {
	PID  uint32 `json:"pid"`
	PPID uint32 `json:"ppid"`
	UID  uint32 `json:"uid"`
	Comm string `json:"comm"`
	Exe  string `json:"exe"`
}

// Request is what a rule sees: httpjail's request object plus the port and
// the process. The JSON form is the --proc line. NewRequest builds every
// one.
type Request struct {
	URL         string `json:"url"`
	Method      string `json:"method"`
	Scheme      string `json:"scheme"` // http, https, tcp, dns
	Host        string `json:"host"`   // no port; IPv6 without brackets
	Port        int    `json:"port"`
	Path        string `json:"path"` // no query
	RequesterIP string `json:"requester_ip"`
	Proc        Proc   `json:"proc"`
}

// Verdict is a rule's decision on one request.
type Verdict struct {
	Allow bool
	// DenyMessage goes into the 403 body after "Request blocked by ebpfjail".
	DenyMessage string
	// MaxTxBytes limits what is sent upstream for this request (request
	// line, headers and body); 0 means no limit.
	MaxTxBytes int64
	// Reason says why, for logs only (never sent to the client): "rule",
	// "rule error: ...", "timeout", "no rule".
	Reason string
}

// Engine decides requests. Implementations are safe for concurrent use;
// Evaluate never fails: an error in the rule is a deny with a Reason.
type Engine interface {
	Evaluate(ctx context.Context, r *Request) Verdict
	Close() error
}
