package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// StateDir is where running jails keep their state records and control
// sockets: internal/jail's Paths.State.
const StateDir = "/run/ebpfjail/jails"

// HintError is a failure with what the user can do about it.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// Words are the commands this package runs.
var Words = map[string]bool{"watch": true, "ps": true, "answer": true}

// Args are the arguments of watch, ps or answer.
type Args struct {
	Word   string // watch, ps or answer
	JSON   bool   // watch --json
	Jail   string // watch: an id prefix, "" for every jail
	ID     string // answer: the held request
	Answer string // answer: allow, always or deny
}

// Parse reads `watch [--json] [JAIL]`, `ps` or `answer ID DECISION`
// into a.
func (a *Args) Parse(args []string) error {
	a.Word = args[0]
	switch a.Word {
	case "answer":
		if len(args) != 3 || (args[2] != AnswerAllow && args[2] != AnswerAlways && args[2] != AnswerDeny) {
			return errors.New("answer takes ID allow|always|deny")
		}
		a.ID, a.Answer = args[1], args[2]
		return nil
	case "ps":
		if len(args) > 1 {
			return fmt.Errorf("ps takes no arguments, got %q", args[1])
		}
		return nil
	}
	for _, w := range args[1:] {
		switch {
		case w == "--json":
			a.JSON = true
		case a.Jail == "" && w != "" && !strings.HasPrefix(w, "-"):
			a.Jail = w
		default:
			return fmt.Errorf("watch takes [--json] [JAIL], got %q", w)
		}
	}
	return nil
}

// Run runs watch or ps on StateDir and returns the exit status. It needs
// root: the sockets are root's, and the server refuses anyone else.
func Run(a *Args, stdout, stderr *os.File) (int, error) {
	word := a.Word
	if runtime.GOOS != "linux" {
		return 0, &HintError{errors.New(word + " needs Linux"), "jails run only on Linux"}
	}
	if os.Geteuid() != 0 {
		return 0, &HintError{errors.New(word + " needs root"), "run it with sudo, as in: sudo ebpfjail " + word}
	}
	return run(a, StateDir, stdout, stderr)
}

func run(a *Args, stateDir string, stdout, stderr *os.File) (int, error) {
	ctx := context.Background()
	if a.Word == "answer" {
		if err := AnswerHeld(ctx, stateDir, a.ID, a.Answer); err != nil {
			return 0, &HintError{err, "'sudo ebpfjail watch' shows the requests that wait, with their ids"}
		}
		return 0, nil
	}
	if a.Word == "ps" {
		jails, err := Running(ctx, stateDir, "")
		if err != nil {
			return 0, err
		}
		if len(jails) == 0 {
			fmt.Fprintln(stdout, "no jail running")
			return 0, nil
		}
		WriteTable(stdout, jails, time.Now())
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &Printer{Out: &stopOnError{w: stdout, stop: cancel}, Notes: stderr, JSON: a.JSON,
		Color: !a.JSON && isTerminal(stdout) && os.Getenv("NO_COLOR") == ""}
	if !a.JSON && isTerminal(os.Stdin) {
		stopKeys := interactive(ctx, cancel, p, stateDir, stderr)
		defer stopKeys()
	}
	if !Watch(ctx, stateDir, a.Jail, a.Jail != "", p) {
		return 0, &HintError{errors.New("no running jail's id starts with " + a.Jail), "'sudo ebpfjail ps' lists the running jails; 'sudo ebpfjail watch' follows all of them"}
	}
	return 0, nil
}

// stopOnError calls stop when a write fails: a reader that went away
// (watch | head) ends the watch.
type stopOnError struct {
	w    io.Writer
	stop func()
}

func (s *stopOnError) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if err != nil {
		s.stop()
	}
	return n, err
}

// interactive lets the person at the terminal answer held requests by
// key; ^C and SIGTERM end the watch with the terminal restored. It
// returns what restores the terminal.
func interactive(ctx context.Context, cancel func(), p *Printer, stateDir string, notes io.Writer) func() {
	restore, err := cbreak(os.Stdin)
	if err != nil {
		return func() {}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	p.keys = &asking{stateDir: stateDir}
	go p.keys.readKeys(ctx, os.Stdin, notes)
	return func() {
		signal.Stop(sigs)
		restore()
	}
}
