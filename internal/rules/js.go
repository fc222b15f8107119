package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

const (
	// DefaultJSTimeout bounds one JavaScript evaluation.
	DefaultJSTimeout = time.Second
	// jsMaxCallStack turns runaway recursion into a quick error instead
	// of a second of memory growth; V8's default allows about as many
	// simple frames.
	jsMaxCallStack = 10000
	// reloadCheckEvery is how often --js-file's mtime is looked at, at
	// most: a stat per request would be the slowest part of a rule.
	reloadCheckEvery = 100 * time.Millisecond
)

// JSOptions configures a JavaScript rule.
type JSOptions struct {
	// Timeout bounds one evaluation (default DefaultJSTimeout). A rule
	// that runs longer is interrupted and the request denied.
	Timeout time.Duration
	// Logger receives console.* output and reload messages (default
	// slog.Default()).
	Logger *slog.Logger
}

// JS evaluates a JavaScript rule with goja, the way httpjail's --js does:
// the request is the global r, the value of the script's last expression is
// the answer (converted as in httpjail: booleans as "true"/"false", strings
// as they are, objects and arrays through JSON.stringify, anything else
// denies; then ParseResult).
//
// The source is compiled once. Evaluations run on a pool of runtimes (a
// goja.Runtime is single-goroutine), so concurrent requests run in
// parallel. Unlike httpjail, which starts a fresh V8 isolate per request,
// a runtime is reused: r is fresh for every request, and the script runs as
// a block, so its top-level let, const, class and function declarations are
// fresh too, but globals it assigns (var, or assignment to an undeclared
// name) persist within one pooled runtime, and runtimes come and go, so a
// rule must not count on them either way.
//
// The runtime has only the ECMAScript built-ins and console: no require,
// no timers, no I/O.
type JS struct {
	name    string
	timeout time.Duration
	log     *slog.Logger
	prog    atomic.Pointer[jsProgram]
	// running bounds the evaluations that run at once to about the
	// CPUs: more would only share them, and a rule's time limit is wall
	// time, so a trivial rule could run out of it while others ran. The
	// wait for a slot does not count against the limit.
	running chan struct{}
	// regexpFrom is this rule's entry in the regexpTimeouts history.
	regexpFrom int

	// --js-file reloading (reload true only).
	path       string
	reload     bool
	checkEvery time.Duration
	nextCheck  atomic.Int64 // unix nanoseconds
	reloadMu   sync.Mutex   // held while checking; guards stamp
	stamp      fileStamp

	// setup, if set, is called on every new runtime (tests use it to
	// expose Go functions).
	setup func(*goja.Runtime)
}

// jsProgram is one compiled version of the rule with its own runtimes: a
// reloaded rule must not see the globals the previous one left behind.
type jsProgram struct {
	prog *goja.Program
	pool sync.Pool // of *jsVM
}

// NewJS compiles src; name labels it in errors, stack traces and logs
// (the file name, or e.g. "--js"). A syntax error is returned as
// "compile rule: name:line:column: message".
func NewJS(src, name string, opts JSOptions) (*JS, error) {
	j := newJS(name, opts)
	p, err := compileRule(src, name)
	if err != nil {
		return nil, err
	}
	j.prog.Store(p)
	return j, nil
}

// NewJSFile reads and compiles the rule in path. With reload false (command
// mode, where the jailed command must not be able to rewrite its own
// policy) the file is read once. With reload true (--server), each
// evaluation looks at the file's modification time, size and inode (at most
// every 100ms) and, when they change, compiles the new text and switches to
// it atomically; if it does not compile, the error is logged and the
// previous rule stays. Replace the file by renaming a new one over it, so
// that a half-written file is never read.
func NewJSFile(path string, opts JSOptions, reload bool) (*JS, error) {
	j := newJS(path, opts)
	st, err := statFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	p, err := compileRule(string(src), path)
	if err != nil {
		return nil, err
	}
	j.prog.Store(p)
	j.path, j.reload, j.stamp = path, reload, st
	j.nextCheck.Store(time.Now().Add(j.checkEvery).UnixNano())
	return j, nil
}

func newJS(name string, opts JSOptions) *JS {
	j := &JS{name: name, timeout: opts.Timeout, log: opts.Logger, checkEvery: reloadCheckEvery}
	if j.timeout <= 0 {
		j.timeout = DefaultJSTimeout
	}
	j.running = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	j.regexpFrom = setRegexpTimeout(j.timeout)
	if j.log == nil {
		j.log = slog.Default()
	}
	return j
}

// compileRule compiles src as the body of a block statement. httpjail runs
// each request in a fresh V8 context; we reuse runtimes, and a script with
// a top-level const would fail with "already declared" on its second run.
// Inside a block those declarations are per run, and the block's completion
// value is still the value of the last expression, which is the answer.
func compileRule(src, name string) (*jsProgram, error) {
	// Parse the text as written first, so syntax errors point at the
	// user's lines and columns, not at the wrapper's.
	parsed, err := parser.ParseFile(nil, name, src, 0)
	if err != nil {
		return nil, fmt.Errorf("compile rule: %s", syntaxError(err, name, 0))
	}
	// A "use strict" directive would be a plain expression inside the
	// block; keep its meaning by compiling the whole program strict.
	strict := hasUseStrict(parsed)
	// "{" shares the first line, so lines keep their numbers; "\n}"
	// keeps a trailing line comment from swallowing the brace.
	prog, err := goja.Compile(name, "{"+src+"\n}", strict)
	if err != nil {
		return nil, fmt.Errorf("compile rule: %s", syntaxError(err, name, 1))
	}
	return &jsProgram{prog: prog}, nil
}

// syntaxError formats a goja parse or compile error as
// "name:line:column: message"; shift is how many characters were prefixed
// to the first line.
func syntaxError(err error, name string, shift int) string {
	format := func(line, col int, msg string) string {
		if line == 1 {
			col -= shift
		}
		return fmt.Sprintf("%s:%d:%d: %s", name, line, col, msg)
	}
	var list parser.ErrorList
	var one *parser.Error
	var cse *goja.CompilerSyntaxError
	switch {
	case errors.As(err, &list) && len(list) > 0:
		// Later errors are mostly echoes of the first.
		return format(list[0].Position.Line, list[0].Position.Column, list[0].Message)
	case errors.As(err, &one):
		return format(one.Position.Line, one.Position.Column, one.Message)
	case errors.As(err, &cse) && cse.File != nil:
		pos := cse.File.Position(cse.Offset)
		return format(pos.Line, pos.Column, cse.Message)
	}
	return name + ": " + err.Error()
}

func hasUseStrict(p *ast.Program) bool {
	for _, st := range p.Body {
		es, ok := st.(*ast.ExpressionStatement)
		if !ok {
			return false
		}
		lit, ok := es.Expression.(*ast.StringLiteral)
		if !ok {
			return false
		}
		if lit.Literal == `'use strict'` || lit.Literal == `"use strict"` {
			return true
		}
	}
	return false
}

// Evaluate runs the rule for r. The evaluation never runs longer than
// about the timeout; it may first wait for one of the evaluation slots,
// for as long as ctx lets it. Once running it does not watch ctx (a
// context watch would cost more than a typical rule), except that console
// output is logged with it.
func (j *JS) Evaluate(ctx context.Context, r *Request) Verdict {
	if r == nil {
		return Verdict{Reason: "rule error: no request"}
	}
	select {
	case j.running <- struct{}{}:
	default:
		select {
		case j.running <- struct{}{}:
		case <-ctx.Done():
			return Verdict{Reason: "rule not evaluated: " + context.Cause(ctx).Error()}
		}
	}
	defer func() { <-j.running }()
	if j.reload {
		j.maybeReload(ctx)
	}
	p := j.prog.Load()
	vm, _ := p.pool.Get().(*jsVM)
	if vm == nil {
		vm = j.newVM()
	}
	v, reusable := vm.run(ctx, p.prog, r)
	if reusable {
		p.pool.Put(vm)
	}
	return v
}

// Close releases nothing: runtimes are garbage collected.
func (j *JS) Close() error { return nil }

// jsVM is one pooled runtime.
type jsVM struct {
	js        *JS
	rt        *goja.Runtime
	global    *goja.Object
	stringify goja.Callable
	// timer interrupts the runtime; it is armed only while running.
	timer *time.Timer
	// ctx is the evaluating request's context, for console output.
	ctx context.Context
}

// errJSTimeout is what the timer interrupts the runtime with.
var errJSTimeout = errors.New("rule timed out")

var boolType = reflect.TypeOf(true)

func (j *JS) newVM() *jsVM {
	rt := goja.New()
	rt.SetMaxCallStackSize(jsMaxCallStack)
	vm := &jsVM{js: j, rt: rt, global: rt.GlobalObject()}
	// Keep the built-in JSON.stringify: a rule redefining JSON must not
	// change how its answer is read.
	vm.stringify, _ = goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	console := rt.NewObject()
	for _, m := range []struct {
		name  string
		level slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"log", slog.LevelInfo},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
	} {
		level := m.level
		_ = console.Set(m.name, func(call goja.FunctionCall) goja.Value {
			vm.console(level, call.Arguments)
			return goja.Undefined()
		})
	}
	_ = rt.Set("console", console)
	if j.setup != nil {
		j.setup(rt)
	}
	vm.timer = time.AfterFunc(time.Hour, func() { rt.Interrupt(errJSTimeout) })
	vm.timer.Stop()
	return vm
}

// console logs like httpjail's console: arguments joined by spaces,
// objects (arrays included) through JSON.stringify, the rest as strings.
func (vm *jsVM) console(level slog.Level, args []goja.Value) {
	ctx := vm.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	log := vm.js.log
	if !log.Enabled(ctx, level) {
		return
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vm.argString(a))
	}
	log.Log(ctx, level, b.String(), "rule", vm.js.name)
}

func (vm *jsVM) argString(a goja.Value) string {
	if o, ok := a.(*goja.Object); ok {
		if s, err := vm.stringify(goja.Undefined(), o); err == nil && !goja.IsUndefined(s) {
			return s.String()
		}
	}
	return a.String()
}

// run evaluates prog for r. It reports whether the runtime may go back to
// the pool: not after a timeout (the interrupt may still be pending), nor
// after an error that unwound the runtime abnormally.
func (vm *jsVM) run(ctx context.Context, prog *goja.Program, r *Request) (v Verdict, reusable bool) {
	defer func() {
		// goja re-panics Go panics it does not own; one here is a bug in
		// a native function, so deny and drop the runtime.
		if p := recover(); p != nil {
			vm.timer.Stop()
			vm.ctx = nil
			v, reusable = Verdict{Reason: fmt.Sprintf("rule error: panic: %v", p)}, false
		}
	}()
	if err := vm.global.Set("r", newJSRequest(vm.rt, r)); err != nil {
		// The rule made r read-only; only a new runtime recovers.
		return Verdict{Reason: "rule error: set r: " + err.Error()}, false
	}
	vm.ctx = ctx
	start := time.Now()
	vm.timer.Reset(vm.js.timeout)
	res, err := vm.rt.RunProgram(prog)
	if err == nil {
		// Still under the timer: JSON.stringify may run the rule's toJSON.
		v, err = vm.verdict(res)
	}
	stopped := vm.timer.Stop()
	vm.ctx = nil
	// A regular expression that hit its match timeout reported "no
	// match" to the script, which may have turned that into an allow:
	// an evaluation that ran as long as a match may is denied whatever
	// it answered (see regexpTimeouts).
	elapsed := time.Since(start)
	timedOut := !stopped || elapsed >= vm.js.timeout || elapsed >= regexpFloor(vm.js.regexpFrom)
	if !timedOut && err != nil {
		// Declared here: its address escapes, and the common path (no
		// error) should not pay for the allocation.
		var ie *goja.InterruptedError
		timedOut = errors.As(err, &ie)
	}
	if timedOut {
		return Verdict{Reason: fmt.Sprintf("rule timed out after %v", vm.js.timeout)}, false
	}
	if err != nil {
		// A thrown value leaves the runtime usable; uncatchable errors
		// (stack overflow) may not.
		_, catchable := err.(*goja.Exception)
		return Verdict{Reason: "rule error: " + err.Error()}, stopped && catchable
	}
	return v, stopped
}

// regexpTimeouts guards regexp2.DefaultMatchTimeout, which goja's
// regular expressions take their match timeout from when they are compiled
// (goja gives no other way to set it, and vm.Interrupt does not stop a
// match in progress): each new rule sets it to its own time limit, so its
// regular expressions give up after about that long. A match that gives
// up reports "no match" to the script, which may turn that into an allow;
// run denies every evaluation that ran as long as the shortest match
// timeout its regular expressions may have been compiled with (the
// rule's own limit, or a later rule's if shorter), so a match that gave up
// never decides. A process normally holds one rule; the history only
// matters when rules with different limits coexist (tests).
var regexpTimeouts struct {
	sync.Mutex
	set []time.Duration
}

// setRegexpTimeout makes d the match timeout of regular expressions
// compiled from now on, and returns its place in the history.
func setRegexpTimeout(d time.Duration) int {
	regexpTimeouts.Lock()
	defer regexpTimeouts.Unlock()
	regexp2.DefaultMatchTimeout = d
	regexpTimeouts.set = append(regexpTimeouts.set, d)
	return len(regexpTimeouts.set) - 1
}

// regexpFloor is the shortest match timeout set since history entry from.
func regexpFloor(from int) time.Duration {
	regexpTimeouts.Lock()
	defer regexpTimeouts.Unlock()
	return slices.Min(regexpTimeouts.set[from:])
}

// verdict converts the script's value as httpjail does.
func (vm *jsVM) verdict(res goja.Value) (Verdict, error) {
	switch {
	case res == nil || goja.IsUndefined(res) || goja.IsNull(res):
		return denyVerdict, nil
	case goja.IsString(res):
		return ParseResult(res.String()), nil
	}
	if o, ok := res.(*goja.Object); ok {
		s, err := vm.stringify(goja.Undefined(), o)
		if err != nil {
			return Verdict{}, err
		}
		// V8 turns an undefined stringification (a function) into the
		// text "undefined", which then denies with that message.
		return ParseResult(s.String()), nil
	}
	if res.ExportType() == boolType {
		if res.ToBoolean() {
			return allowVerdict, nil
		}
		return denyVerdict, nil
	}
	return denyVerdict, nil // numbers, bigints, symbols
}

// fileStamp identifies a version of the rule file.
type fileStamp struct {
	mtime    int64
	size     int64
	dev, ino uint64
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), sys.Ino
	}
	return st, nil
}

// maybeReload checks the rule file if it is time to. One caller does the
// check while the others go on with the current rule.
func (j *JS) maybeReload(ctx context.Context) {
	now := time.Now().UnixNano()
	next := j.nextCheck.Load()
	if now < next || !j.nextCheck.CompareAndSwap(next, now+int64(j.checkEvery)) {
		return
	}
	if !j.reloadMu.TryLock() {
		return
	}
	defer j.reloadMu.Unlock()
	st, err := statFile(j.path)
	if err != nil || st == j.stamp {
		return // a missing file keeps the rule, as in httpjail
	}
	j.stamp = st
	src, err := os.ReadFile(j.path)
	if err != nil {
		j.log.ErrorContext(ctx, "rule file not reloaded", "rule", j.name, "err", err)
		return
	}
	p, err := compileRule(string(src), j.path)
	if err != nil {
		j.log.ErrorContext(ctx, "rule file not reloaded; keeping the previous rule", "rule", j.name, "err", err)
		return
	}
	j.prog.Store(p)
	j.log.InfoContext(ctx, "rule file reloaded", "rule", j.name)
}
