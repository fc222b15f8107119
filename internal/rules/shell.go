package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultShellTimeout bounds one --sh evaluation, as in httpjail.
const DefaultShellTimeout = 30 * time.Second

// maxScriptOutput caps what is kept of a script's stdout and stderr; the
// rest is read and dropped so the script never blocks on a full pipe.
const maxScriptOutput = 64 << 10

// ShellOptions configures a --sh rule.
type ShellOptions struct {
	// Timeout bounds one evaluation (default DefaultShellTimeout); then
	// the script's process group is killed and the request denied.
	Timeout time.Duration
	// Logger receives the script's stderr at debug level (default
	// slog.Default()).
	Logger *slog.Logger
	// Credential runs the script as another user (the invoking user when
	// ebpfjail runs under sudo); nil runs it as ebpfjail runs.
	Credential *syscall.Credential
	// Env is the environment the request's variables are added to; nil
	// means ebpfjail's own environment.
	Env []string
}

// Shell is httpjail's --sh: one process per request, outside the jail. A
// script containing a space runs as sh -c SCRIPT, anything else is executed
// directly with no arguments. Exit status 0 allows, anything else denies
// with the trimmed stdout as the message; on allow the stdout is kept in
// Reason as "rule: <stdout>" (for --test). The request is in the
// environment: HTTPJAIL_URL, _METHOD, _SCHEME, _HOST, _PATH, _REQUESTER_IP,
// the same with an EBPFJAIL_ prefix, and EBPFJAIL_PORT, _PID, _PPID, _UID,
// _COMM, _EXE. Errors never reach DenyMessage (httpjail put the OS error in
// the 403 body); they are in Reason.
type Shell struct {
	name    string
	pin     *pinned
	timeout time.Duration
	log     *slog.Logger
	cred    *syscall.Credential
	env     []string
}

// NewShell returns the --sh engine for script. Nothing is started until a
// request comes; the script's file is pinned now (pin.go).
func NewShell(script string, opts ShellOptions) (Engine, error) {
	s := &Shell{name: script, timeout: opts.Timeout, log: opts.Logger, cred: opts.Credential, env: opts.Env}
	argv := []string{script}
	if strings.Contains(script, " ") {
		argv = []string{"sh", "-c", script}
	}
	pin, err := pinProgram(argv, s.cred)
	if err != nil {
		return nil, err
	}
	s.pin, s.name = pin, argv[0]
	if s.timeout <= 0 {
		s.timeout = DefaultShellTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.env == nil {
		s.env = os.Environ()
	}
	return s, nil
}

// Evaluate runs the script for r.
func (s *Shell) Evaluate(ctx context.Context, r *Request) Verdict {
	if r == nil {
		return Verdict{Reason: "rule error: no request"}
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := s.pin.command(exec.CommandContext(tctx, s.pin.argv[0], s.pin.argv[1:]...))
	cmd.Env = append(s.env[:len(s.env):len(s.env)], requestEnv(r)...)
	cmd.SysProcAttr = childAttr(s.cred)
	// Kill the whole process group, so a script's children go too.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background child still holding stdout must not keep us waiting
	// after the script itself has exited.
	cmd.WaitDelay = time.Second
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script exited 0 but left children holding its output.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = nil
	}
	if e := bytes.TrimSpace(stderr.Bytes()); len(e) > 0 {
		s.log.DebugContext(ctx, "rule script stderr", "rule", s.name, "stderr", string(e))
	}
	out := strings.TrimSpace(stdout.String())
	switch {
	case err == nil:
		if out != "" {
			return Verdict{Allow: true, Reason: "rule: " + out}
		}
		return allowVerdict
	case ctx.Err() != nil:
		return Verdict{Reason: "rule error: " + ctx.Err().Error()}
	case tctx.Err() != nil:
		return Verdict{Reason: "Script execution timed out"}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return Verdict{DenyMessage: out, Reason: reasonRule}
	}
	return Verdict{Reason: fmt.Sprintf("rule error: run script: %v", err)}
}

// Close releases the pinned script: no process outlives its request.
func (s *Shell) Close() error {
	s.pin.close()
	return nil
}

// requestEnv is the request as environment variables for --sh.
func requestEnv(r *Request) []string {
	env := make([]string, 0, 18)
	for _, kv := range [...]struct{ k, v string }{
		{"URL", r.URL},
		{"METHOD", r.Method},
		{"SCHEME", r.Scheme},
		{"HOST", r.Host},
		{"PATH", r.Path},
		{"REQUESTER_IP", r.RequesterIP},
	} {
		env = append(env, "HTTPJAIL_"+kv.k+"="+kv.v, "EBPFJAIL_"+kv.k+"="+kv.v)
	}
	return append(env,
		"EBPFJAIL_PORT="+strconv.Itoa(r.Port),
		"EBPFJAIL_PID="+strconv.FormatUint(uint64(r.Proc.PID), 10),
		"EBPFJAIL_PPID="+strconv.FormatUint(uint64(r.Proc.PPID), 10),
		"EBPFJAIL_UID="+strconv.FormatUint(uint64(r.Proc.UID), 10),
		"EBPFJAIL_COMM="+r.Proc.Comm,
		"EBPFJAIL_EXE="+r.Proc.Exe,
	)
}

// cappedBuffer keeps the first maxScriptOutput bytes written to it and
// accepts (drops) the rest.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxScriptOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
