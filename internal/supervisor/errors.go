package supervisor

// Step is the part of starting a run that failed.
type Step int

// The steps an Error names.
const (
	StepUser       Step = iota + 1 // resolving the user (see jail.ErrRootChild)
	StepRule                       // compiling or starting the rule
	StepCA                         // loading or making the CA
	StepListen                     // the explicit proxy's listener
	StepPaths                      // finding or mounting cgroup2 and bpffs
	StepServices                   // the DNS shim's or the proxy's listeners
	StepLoad                       // loading the BPF object
	StepDenyUnix                   // the unix sockets to deny
	StepJail                       // creating the jail's cgroup and record
	StepAttach                     // attaching or pinning the programs
	StepUnixHooks                  // abstract sockets to allow, but no cgroup unix hooks
	StepAllowUnix                  // the abstract sockets to allow
	StepStart                      // the command did not start (see jail.ErrNotFound etc.)
	StepRequestLog                 // opening the request log
	StepJSONLog                    // opening the JSON log
)

// Error is a failure of one step; its text is Err's.
type Error struct {
	Step Step
	Err  error
	User string // StepStart: who the command was to run as ("" is the caller)
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitTimeout is the status after the timeout stopped the command.
const ExitTimeout = 124

// exitFailure is the status when the command cannot be waited for.
const exitFailure = 125
