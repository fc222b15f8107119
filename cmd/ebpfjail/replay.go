package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/replay"
)

// replayArgs are replay's and rule-from's: the word, the session file and
// rule-from's -o.
type replayArgs struct {
	word, events, output string
	help                 bool
}

// parseReplay reads the arguments after replay or rule-from: the rule
// flags of a jail (replay), -o FILE (rule-from), and EVENTS.jsonl.
func parseReplay(o *options, args []string) error {
	a := &replayArgs{word: args[0]}
	o.replay = a
	// Its own options, so that a rule given before the word stays.
	sub := &options{}
	fs := newFlagSet(sub)
	fs.SetInterspersed(true)
	fs.StringVarP(&a.output, "output", "o", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%s: %w", a.word, err)
	}
	if sub.help {
		a.help = true // its own help, not the jail's
		return nil
	}
	takes := map[string]bool{"js": true, "js-file": true, "sh": true, "proc": true, "js-timeout": true}
	if a.word == "rule-from" {
		takes = map[string]bool{"output": true}
	}
	var bad error
	fs.Visit(func(f *pflag.Flag) {
		if !takes[f.Name] && bad == nil {
			bad = fmt.Errorf("%s does not take --%s", a.word, f.Name)
		}
	})
	o.js, o.jsFile = cmp.Or(sub.js, o.js), cmp.Or(sub.jsFile, o.jsFile)
	o.sh, o.proc = cmp.Or(sub.sh, o.sh), cmp.Or(sub.proc, o.proc)
	if fs.Changed("js-timeout") {
		o.jsTimeout = sub.jsTimeout
	}
	hasRule := o.js != "" || o.jsFile != "" || o.sh != "" || o.proc != ""
	switch {
	case bad != nil:
		return bad
	case fs.NArg() != 1:
		return fmt.Errorf("%s wants one EVENTS.jsonl file (what --log-json wrote), got %d arguments", a.word, fs.NArg())
	case a.word == "replay" && !hasRule:
		return errors.New("replay needs the rule to try: --js, --js-file, --sh or --proc")
	case a.word == "rule-from" && hasRule:
		return errors.New("rule-from writes a rule: it takes none")
	}
	a.events = fs.Arg(0)
	return checkRules(o)
}

// runReplay runs replay (exit 0: no change, 1: changes) or rule-from.
func runReplay(w io.Writer, o *options, log *slog.Logger) (int, error) {
	a := o.replay
	if a.help {
		fmt.Fprint(w, replay.Usage)
		return 0, nil
	}
	s, err := replay.ReadFile(a.events)
	if err != nil {
		return 0, fail(replay.ExitUnreadable, err, "EVENTS.jsonl is what --log-json FILE wrote: one JSON event per line")
	}
	if a.word == "rule-from" {
		return 0, replay.WriteRule(w, a.output, s)
	}
	// --sh and --proc run as whoever runs replay, as for --test.
	engine, err := buildEngine(o, log, &jail.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	return replay.Run(context.Background(), w, engine, s), nil
}
