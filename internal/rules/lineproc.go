package rules

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultProcTimeout bounds one --proc exchange, as in httpjail.
const DefaultProcTimeout = 5 * time.Second

// maxLine caps a --proc answer; a longer one counts as garbage.
const maxLine = 1 << 20

// ProcOptions configures a --proc rule.
type ProcOptions struct {
	// Timeout bounds writing one request and reading its answer
	// (default DefaultProcTimeout).
	Timeout time.Duration
	// Logger receives the program's stderr (at warn level: httpjail
	// passes it straight to its own stderr) and restarts (default
	// slog.Default()).
	Logger *slog.Logger
	// Credential runs the program as another user; nil runs it as
	// ebpfjail runs.
	Credential *syscall.Credential
	// Env is the program's environment; nil means ebpfjail's own.
	Env []string
}

// LineProcess is httpjail's --proc: one long-lived program, outside the
// jail, that gets each request as one JSON object on a line of its stdin
// (keys url, method, scheme, host, port, path, requester_ip, proc) and
// answers with one line on stdout, read by ParseResult. Requests are
// serialized, one in flight. A timeout, EOF, read or write error, an empty
// or over-long answer kills the program's process group; the request is
// retried once on a fresh process and then denied with Reason
// "program evaluation failed: ...".
//
// The program string is split on spaces into argv, with no quoting: httpjail
// did not split it although its documentation promised that
// "/usr/bin/python3 -u filter.py" works; here it does. Unlike httpjail the
// program starts with the engine, so one that cannot start is an error
// before the jailed command runs.
type LineProcess struct {
	argv    []string
	pin     *pinned
	timeout time.Duration
	log     *slog.Logger
	cred    *syscall.Credential
	env     []string

	// sem is a one-slot mutex that a waiting request can give up on.
	sem    chan struct{}
	cur    *lineChild // guarded by sem
	closed bool       // guarded by sem
	buf    bytes.Buffer
	starts int // guarded by sem; for tests
}

// NewLineProcess starts program and returns the --proc engine.
func NewLineProcess(program string, opts ProcOptions) (*LineProcess, error) {
	argv := strings.Fields(program)
	if len(argv) == 0 {
		return nil, errors.New("start rule program: empty command")
	}
	p := &LineProcess{argv: argv, timeout: opts.Timeout, log: opts.Logger, cred: opts.Credential, env: opts.Env, sem: make(chan struct{}, 1)}
	if p.timeout <= 0 {
		p.timeout = DefaultProcTimeout
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.env == nil {
		p.env = os.Environ()
	}
	// Restarts run what was named now, not what the file holds then.
	pin, err := pinProgram(argv, p.cred)
	if err != nil {
		return nil, fmt.Errorf("start rule program: %w", err)
	}
	p.pin = pin
	c, err := p.start()
	if err != nil {
		pin.close()
		return nil, err
	}
	p.cur = c
	return p, nil
}

// lineChild is one running instance of the program.
type lineChild struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	rd     *bufio.Reader
	done   chan struct{} // closed once the process has been reaped
}

func (p *LineProcess) start() (*lineChild, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start rule program: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start rule program: %w", err)
	}
	cmd := p.pin.command(exec.Command(p.argv[0], p.argv[1:]...))
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := &logWriter{log: p.log, name: strings.Join(p.argv, " ")}
	cmd.Stderr = stderr
	cmd.Env = p.env
	cmd.SysProcAttr = childAttr(p.cred)
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	// The child has its own copies; ours would keep EOF from ever coming.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start rule program: %w", err)
	}
	p.starts++
	c := &lineChild{cmd: cmd, stdin: inW, stdout: outR, rd: bufio.NewReader(outR), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		stderr.emit(stderr.buf) // a last line without a newline
		close(c.done)
	}()
	return c, nil
}

// kill ends the program and everything it started, and waits for it.
func (c *lineChild) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	c.stdin.Close()
	c.stdout.Close()
	<-c.done
}

func (c *lineChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

var errEmptyAnswer = errors.New("empty answer line")

// exchange writes line and reads one answer line, by deadline.
func (c *lineChild) exchange(ctx context.Context, line []byte, deadline time.Time) (string, error) {
	// Cancelling ctx fails the pending read or write at once.
	stop := context.AfterFunc(ctx, func() {
		past := time.Unix(1, 0)
		_ = c.stdin.SetWriteDeadline(past)
		_ = c.stdout.SetReadDeadline(past)
	})
	defer stop()
	if err := c.stdin.SetWriteDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := c.stdin.Write(line); err != nil {
		return "", fmt.Errorf("write request: %w", err)
	}
	if err := c.stdout.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	var ans []byte
	for {
		chunk, err := c.rd.ReadSlice('\n')
		ans = append(ans, chunk...)
		if len(ans) > maxLine {
			return "", errors.New("read answer: line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(ans) > 0 {
			break // a last line without a newline still counts, as in httpjail
		}
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
		break
	}
	s := strings.TrimSpace(string(ans))
	if s == "" {
		return "", errEmptyAnswer
	}
	return s, nil
}

// Evaluate sends r to the program and parses its answer.
func (p *LineProcess) Evaluate(ctx context.Context, r *Request) Verdict {
	if r == nil {
		return Verdict{Reason: "rule error: no request"}
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return Verdict{Reason: "rule error: " + ctx.Err().Error()}
	}
	defer func() { <-p.sem }()
	if p.closed {
		return Verdict{Reason: "rule error: engine closed"}
	}
	p.buf.Reset()
	enc := json.NewEncoder(&p.buf)
	enc.SetEscapeHTML(false) // serde does not escape <, > and &
	if err := enc.Encode(r); err != nil {
		return Verdict{Reason: "rule error: encode request: " + err.Error()}
	}
	line := p.buf.Bytes()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		if p.cur != nil && p.cur.exited() {
			p.log.WarnContext(ctx, "rule program exited; restarting it", "rule", p.argv[0])
			p.cur.kill()
			p.cur = nil
		}
		if p.cur == nil {
			c, err := p.start()
			if err != nil {
				lastErr = err
				continue
			}
			p.cur = c
		}
		deadline := time.Now().Add(p.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		ans, err := p.cur.exchange(ctx, line, deadline)
		if err == nil {
			return ParseResult(ans)
		}
		// The program's state is unknown now (a late answer would be
		// read as the next request's), so it goes.
		p.log.WarnContext(ctx, "rule program failed; restarting it", "rule", p.argv[0], "err", err)
		p.cur.kill()
		p.cur = nil
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return Verdict{Reason: fmt.Sprintf("program evaluation failed: %v", lastErr)}
}

// Close kills the program. Evaluations after Close deny.
func (p *LineProcess) Close() error {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	p.closed = true
	if p.cur != nil {
		p.cur.kill()
		p.cur = nil
	}
	p.pin.close()
	return nil
}

// logWriter logs each line written to it.
type logWriter struct {
	log  *slog.Logger
	name string
	buf  []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	if len(w.buf) > maxLine {
		w.emit(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *logWriter) emit(line []byte) {
	if line = bytes.TrimSpace(line); len(line) > 0 {
		w.log.Warn("rule program stderr", "rule", w.name, "line", string(line))
	}
}
