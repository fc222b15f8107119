package rules

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// testTimeout is long because these machines can stall for seconds; tests
// of the time limit itself set a short one.
const testTimeout = 30 * time.Second

func newTestJS(t *testing.T, src string) *JS {
	t.Helper()
	js, err := NewJS(src, "--js", JSOptions{Timeout: testTimeout, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatalf("NewJS(%q): %v", src, err)
	}
	return js
}

func TestJSSyntaxError(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"invalid syntax !!!", "compile rule: --js:1:9: Unexpected identifier"},
		{"true &&", "compile rule: --js:1:8: Unexpected end of input"},
		{"true\n  foo bar", "compile rule: --js:2:7: Unexpected identifier"},
		{"r.host === 'a' &&\n  (r.port === 443", "compile rule: --js:2:18: Unexpected end of input"},
		// Found by the compiler (after the block wrapper was added), not
		// the parser; the column is still the user's.
		{"let x = 1; let x = 2; x", "compile rule: --js:1:16: Identifier 'x' has already been declared"},
		{"return true", "compile rule: --js:1:1: Illegal return statement"},
	} {
		_, err := NewJS(tc.src, "--js", JSOptions{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewJS(%q) error = %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestJSEvaluate(t *testing.T) {
	r := typicalRequest()
	for _, tc := range []struct {
		src  string
		want Verdict
	}{
		{typicalRule, allow()},
		{"r.host === 'other.example.com'", deny("")},
		{"r.port === 443 && typeof r.port === 'number'", allow()},
		{"r.proc.comm === 'curl' && r.proc.pid === 41234 && r.proc.ppid === 41200 && r.proc.uid === 1000", allow()},
		{"r.proc.exe === '/usr/bin/curl' && r.path === '/v1/messages' && r.scheme === 'https'", allow()},
		{"r.url.endsWith('?beta=true') && r.requester_ip === '10.0.0.2'", allow()},
		// A multi-statement rule whose answer is an if statement's value
		// (httpjail's test_object_response).
		{"if (r.host === 'blocked.com') {\n ({allow: false, deny_message: `Host ${r.host} is blocked`})\n} else {\n ({allow: true})\n}", allow()},
		{"const hosts = ['api.example.com'];\nconst paths = ['/admin'];\nif (paths.some(p => r.path.startsWith(p))) { ({deny_message: 'admin'}) } else { hosts.includes(r.host) }", allow()},
		{"({deny_message: `no ${r.method} to ${r.host}:${r.port}`})", deny("no GET to api.example.com:443")},
		// Result conversion corners, as httpjail's V8 code does them.
		{"(function () {})", deny("undefined")},
		{"new Boolean(false)", deny("")}, // an object: JSON.stringify gives "false"
		{"[true, 'x']", allow()},         // serde's sequence form
		{"[false, 'x']", deny("x")},
		{"Symbol('x')", deny("")},
		{"10n", deny("")},
		{"''", deny("")},
		{"'  true  '", allow()},
		// No way out of the sandbox.
		{"typeof require === 'undefined' && typeof setTimeout === 'undefined' && typeof fetch === 'undefined' && typeof process === 'undefined'", allow()},
	} {
		js := newTestJS(t, tc.src)
		for i := range 2 { // the second run reuses the runtime
			if got := js.Evaluate(context.Background(), r); got != tc.want {
				t.Errorf("rule %q run %d: got %+v, want %+v", tc.src, i, got, tc.want)
			}
		}
	}
}

func TestJSException(t *testing.T) {
	js := newTestJS(t, "r.host === 'throw' ? host.x : true")
	ctx := context.Background()
	got := js.Evaluate(ctx, &Request{Host: "throw"})
	if got.Allow || got.DenyMessage != "" || !strings.HasPrefix(got.Reason, "rule error: ReferenceError: host is not defined") {
		t.Errorf("got %+v, want a deny with Reason rule error: ReferenceError: host is not defined ...", got)
	}
	if got := js.Evaluate(ctx, &Request{Host: "fine"}); got != allow() {
		t.Errorf("after the exception: got %+v, want allow", got)
	}
	js = newTestJS(t, "throw new Error('nope')")
	if got := js.Evaluate(ctx, &Request{}); got.Allow || got.DenyMessage != "" || !strings.HasPrefix(got.Reason, "rule error: Error: nope") {
		t.Errorf("throw: got %+v", got)
	}
}

func TestJSTimeout(t *testing.T) {
	js, err := NewJS("if (r.host === 'loop') { while (true) {} }\ntrue", "--js", JSOptions{Timeout: 100 * time.Millisecond, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	got := js.Evaluate(ctx, &Request{Host: "loop"})
	elapsed := time.Since(start)
	if want := (Verdict{Reason: "rule timed out after 100ms"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if elapsed < 100*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("took %v, want about 100ms", elapsed)
	}
	for range 3 {
		if got := js.Evaluate(ctx, &Request{Host: "fine"}); got != allow() {
			t.Errorf("after the timeout: got %+v, want allow", got)
		}
	}
}

func TestJSTimeoutInToJSON(t *testing.T) {
	// JSON.stringify of the answer runs the rule's code too.
	js, err := NewJS("({toJSON() { while (true) {} }})", "--js", JSOptions{Timeout: 50 * time.Millisecond, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := js.Evaluate(context.Background(), &Request{}), (Verdict{Reason: "rule timed out after 50ms"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestJSStackOverflow(t *testing.T) {
	js := newTestJS(t, "function f(n) { return f(n + 1) + 1 }\nr.host === 'deep' ? f(0) : true")
	ctx := context.Background()
	got := js.Evaluate(ctx, &Request{Host: "deep"})
	if got.Allow || !strings.HasPrefix(got.Reason, "rule error: ") {
		t.Errorf("got %+v, want a rule error", got)
	}
	if got := js.Evaluate(ctx, &Request{Host: "fine"}); got != allow() {
		t.Errorf("after the overflow: got %+v, want allow", got)
	}
}

func TestJSTopLevelDeclarations(t *testing.T) {
	// Each would fail on its second run in a reused runtime if the rule
	// were not run as a block.
	js := newTestJS(t, "const a = 1; let b = 2; class C {}; function f() { return a + b }\nf() === 3")
	for i := range 3 {
		if got := js.Evaluate(context.Background(), &Request{}); got != allow() {
			t.Errorf("run %d: got %+v, want allow", i, got)
		}
	}
}

func TestJSUseStrict(t *testing.T) {
	for _, tc := range []struct {
		src    string
		strict bool
	}{
		{"'use strict'; undeclared = 1; true", true},
		{"\"use strict\"\nundeclared = 1; true", true},
		{"'use loose'; 'use strict'; undeclared = 1; true", true},
		{"undeclared = 1; true", false},
		{"true; 'use strict'; undeclared = 1; true", false},
	} {
		got := newTestJS(t, tc.src).Evaluate(context.Background(), &Request{})
		if tc.strict && (got.Allow || !strings.Contains(got.Reason, "ReferenceError")) {
			t.Errorf("%q: got %+v, want a ReferenceError (strict mode)", tc.src, got)
		}
		if !tc.strict && got != allow() {
			t.Errorf("%q: got %+v, want allow (sloppy mode)", tc.src, got)
		}
	}
}

func TestJSRequestObject(t *testing.T) {
	r := typicalRequest()
	r.Host = `quote"<&>`
	// The whole object as httpjail's JSON.parse would give it.
	js := newTestJS(t, "({deny_message: JSON.stringify(r)})")
	got := js.Evaluate(context.Background(), r)
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	wantStr := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want))
	if got.DenyMessage != wantStr {
		t.Errorf("JSON.stringify(r) = %s\nwant            %s", got.DenyMessage, wantStr)
	}
	for _, src := range []string{
		"Object.keys(r).join() === 'url,method,scheme,host,port,path,requester_ip,proc'",
		"Object.keys(r.proc).join() === 'pid,ppid,uid,comm,exe'",
		"Object.getPrototypeOf(r) === Object.prototype && typeof r === 'object'",
		"'host' in r && !('nope' in r) && r.hasOwnProperty('proc')",
		"const {host, proc: {comm}} = r; host === 'api.example.com' && comm === 'curl'",
		"const c = {...r}; c.port === 443 && c.proc.uid === 1000",
		"r.extra = 1; r.host = 'x'; delete r.url; r.extra === 1 && r.host === 'x' && r.url === undefined && Object.keys(r).join() === 'method,scheme,host,port,path,requester_ip,proc,extra'",
		"r.proc.comm = 'x'; r.proc.comm === 'x'",
		"Object.entries(r.proc).length === 5",
	} {
		if got := newTestJS(t, src).Evaluate(context.Background(), typicalRequest()); got != allow() {
			t.Errorf("%q: got %+v, want allow", src, got)
		}
	}
}

func TestJSFreshRequest(t *testing.T) {
	// Whatever the rule does to r, the next request's r is untouched; a
	// reference kept in a global still shows its own request.
	js := newTestJS(t, `
const ok = r.seen === undefined && r.url !== undefined && r.proc.comm === 'curl' &&
	(typeof prev === 'undefined' || prev.host !== r.host);
r.seen = true; delete r.url; r.proc.comm = 'changed';
var prev = r;
ok`)
	for i, host := range []string{"a", "b", "c", "d"} {
		r := typicalRequest()
		r.Host = host
		if got := js.Evaluate(context.Background(), r); got != allow() {
			t.Errorf("request %d: got %+v, want allow", i, got)
		}
	}
}

// captureHandler records log records.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func (h *captureHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.Key + "=" + a.Value.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

func TestJSConsole(t *testing.T) {
	h := &captureHandler{}
	js, err := NewJS(`
console.debug('d', 1, true);
console.log('l', {a: 1}, [1, 'x']);
console.info('i', null, undefined);
console.warn(r.host);
console.error('e', r.proc);
console.log();
true`, "rule.js", JSOptions{Timeout: testTimeout, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	r := typicalRequest()
	if got := js.Evaluate(context.Background(), r); got != allow() {
		t.Fatalf("got %+v, want allow", got)
	}
	want := []string{
		"DEBUG d 1 true rule=rule.js",
		`INFO l {"a":1} [1,"x"] rule=rule.js`,
		"INFO i null undefined rule=rule.js",
		"WARN api.example.com rule=rule.js",
		`ERROR e {"pid":41234,"ppid":41200,"uid":1000,"comm":"curl","exe":"/usr/bin/curl"} rule=rule.js`,
		"INFO  rule=rule.js",
	}
	got := h.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("console output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// countRunning gives rules enter() and leave(), which count the
// evaluations inside the rule and the most at once.
func countRunning(running, maxRunning *atomic.Int32) func(*goja.Runtime) {
	return func(rt *goja.Runtime) {
		_ = rt.Set("enter", func() {
			cur := running.Add(1)
			for {
				m := maxRunning.Load()
				if cur <= m || maxRunning.CompareAndSwap(m, cur) {
					break
				}
			}
		})
		_ = rt.Set("leave", func() { running.Add(-1) })
	}
}

// TestJSParallel proves the runtimes pool: 64 evaluations of a rule that
// busy-waits 50ms overlap, counted from Go.
func TestJSParallel(t *testing.T) {
	const n = 64
	var running, maxRunning atomic.Int32
	js := newTestJS(t, "enter(); const t0 = Date.now(); while (Date.now() - t0 < 50) {} leave(); true")
	js.setup = countRunning(&running, &maxRunning)
	start := time.Now()
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for range n {
		wg.Go(func() {
			if js.Evaluate(context.Background(), typicalRequest()).Allow {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d evaluations of a 50ms rule: %v wall, at most %d running at once", n, time.Since(start), maxRunning.Load())
	if allowed.Load() != n {
		t.Errorf("%d of %d allowed", allowed.Load(), n)
	}
	if m := maxRunning.Load(); m < 2 {
		t.Errorf("at most %d evaluation ran at a time; want them to overlap", m)
	}
}

// TestJSRendezvous is the strict form: every evaluation a slot lets run
// waits inside the rule until all of them are inside, which only a pool
// that never serializes them can satisfy.
func TestJSRendezvous(t *testing.T) {
	js := newTestJS(t, "arrive()")
	n := cap(js.running)
	var inside sync.WaitGroup
	inside.Add(n)
	all := make(chan struct{})
	go func() { inside.Wait(); close(all) }()
	js.setup = func(rt *goja.Runtime) {
		_ = rt.Set("arrive", func() bool {
			inside.Done()
			select {
			case <-all:
				return true
			case <-time.After(20 * time.Second):
				return false
			}
		})
	}
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for range n {
		wg.Go(func() {
			if js.Evaluate(context.Background(), typicalRequest()).Allow {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != int32(n) {
		t.Errorf("%d of %d evaluations were inside the rule together", allowed.Load(), n)
	}
}

// TestJSQueuedEvaluationsAreNotTimedOut: many more evaluations than CPUs
// at once, of a rule that computes for a while, all answer: at most
// cap(running) run at a time, and the wait for a turn does not count
// against the time limit. Shared among all of them, the CPUs would take
// each past its limit.
func TestJSQueuedEvaluationsAreNotTimedOut(t *testing.T) {
	const src = "let x = 0; for (let i = 0; i < n; i++) { x += i % 7 } x >= 0"
	// Calibrate: how long one evaluation takes here.
	js := newTestJS(t, "var n = 100000;\n"+src)
	start := time.Now()
	if v := js.Evaluate(context.Background(), typicalRequest()); !v.Allow {
		t.Fatalf("calibration: %+v", v)
	}
	one := time.Since(start)
	limit := max(10*one, 20*time.Millisecond)
	js, err := NewJS("var n = 100000;\n"+src, "--js", JSOptions{Timeout: limit, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	n := 6 * cap(js.running)
	var running, maxRunning atomic.Int32
	js.setup = countRunning(&running, &maxRunning)
	js.prog.Store(mustCompile(t, "enter(); try { var n = 100000;\n"+src+" } finally { leave() }"))
	var wg sync.WaitGroup
	var allowed atomic.Int32
	var denied sync.Map
	for range n {
		wg.Go(func() {
			v := js.Evaluate(context.Background(), typicalRequest())
			if v.Allow {
				allowed.Add(1)
			} else {
				denied.Store(v.Reason, true)
			}
		})
	}
	wg.Wait()
	t.Logf("one evaluation %v, limit %v, %d at once of %d", one, limit, maxRunning.Load(), n)
	if allowed.Load() != int32(n) {
		var reasons []string
		denied.Range(func(k, _ any) bool { reasons = append(reasons, k.(string)); return true })
		t.Errorf("%d of %d evaluations allowed, want all (denied: %v)", allowed.Load(), n, reasons)
	}
	if m := maxRunning.Load(); int(m) > cap(js.running) {
		t.Errorf("%d evaluations ran at once, want at most %d", m, cap(js.running))
	}
}

func mustCompile(t *testing.T, src string) *jsProgram {
	t.Helper()
	p, err := compileRule(src, "--js")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// catastrophic backtracks for many seconds on a path like /api/a-a-...-a-!
// (goja hands it to regexp2, whose matches vm.Interrupt cannot stop).
const catastrophic = `/^\/api\/(?!admin)([\w-]+\/?)+$/`

// TestJSRegexpIsCutAtTheTimeLimitAndDenies: a deny list written as a
// regular expression (allow unless it matches) would allow when the engine
// gives up and reports no match; the evaluation is cut at about the limit
// and denies, and the runtimes still answer afterwards.
func TestJSRegexpIsCutAtTheTimeLimitAndDenies(t *testing.T) {
	const limit = 300 * time.Millisecond
	js, err := NewJS("!"+catastrophic+".test(r.path)", "--js", JSOptions{Timeout: limit, Logger: testutil.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	got := js.Evaluate(ctx, &Request{Path: "/api/" + strings.Repeat("a-", 30) + "!"})
	took := time.Since(start)
	if want := (Verdict{Reason: "rule timed out after 300ms"}); got != want {
		t.Errorf("backtracking path: got %+v, want %+v", got, want)
	}
	if took > 5*limit {
		t.Errorf("backtracking path: answered after %v, want about the limit %v (at most %v)", took, limit, 5*limit)
	}
	for _, p := range []string{"/ok", "/api/admin", "/api/x/y"} {
		want := p != "/api/x/y"
		if got := js.Evaluate(ctx, &Request{Path: p}); got.Allow != want {
			t.Errorf("path %s after the timeout: got %+v, want allow=%v", p, got, want)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	// Rename over the old file, as documented; the new inode marks the
	// change even within one mtime tick.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestJSFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rule.js")
	writeFile(t, path, "true")
	h := &captureHandler{}
	js, err := NewJSFile(path, JSOptions{Timeout: testTimeout, Logger: slog.New(h)}, true)
	if err != nil {
		t.Fatal(err)
	}
	js.checkEvery = 0
	js.nextCheck.Store(0)
	ctx := context.Background()
	eval := func(host string) Verdict { return js.Evaluate(ctx, &Request{Host: host}) }
	steps := []struct {
		write string // "" leaves the file alone
		host  string
		want  Verdict
	}{
		{"", "a.com", allow()},
		{"false", "a.com", deny("")},
		{"r.host === 'allowed.com'", "allowed.com", allow()},
		{"", "denied.com", deny("")},
		{"invalid syntax !!!", "allowed.com", allow()}, // the old rule stays
		{"", "denied.com", deny("")},
		{"({deny_message: 'v2'})", "allowed.com", deny("v2")},
	}
	for i, s := range steps {
		if s.write != "" {
			writeFile(t, path, s.write)
		}
		if got := eval(s.host); got != s.want {
			t.Errorf("step %d (%q, %s): got %+v, want %+v", i, s.write, s.host, got, s.want)
		}
	}
	var sawError bool
	for _, l := range h.lines() {
		if strings.HasPrefix(l, "ERROR rule file not reloaded") && strings.Contains(l, "rule.js:1:9: Unexpected identifier") {
			sawError = true
		}
	}
	if !sawError {
		t.Errorf("no error logged for the bad rule; log:\n%s", strings.Join(h.lines(), "\n"))
	}
	// A removed file keeps the rule too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := eval("allowed.com"); got != deny("v2") {
		t.Errorf("after removal: got %+v, want the last rule", got)
	}
}

func TestJSFileNoReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rule.js")
	writeFile(t, path, "true")
	js, err := NewJSFile(path, JSOptions{Timeout: testTimeout, Logger: testutil.DiscardLogger()}, false)
	if err != nil {
		t.Fatal(err)
	}
	js.checkEvery = 0
	js.nextCheck.Store(0)
	writeFile(t, path, "false")
	if got := js.Evaluate(context.Background(), &Request{}); got != allow() {
		t.Errorf("after rewriting the file in command mode: got %+v, want the original rule (allow)", got)
	}
}

func TestJSFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewJSFile(filepath.Join(dir, "missing.js"), JSOptions{}, false); err == nil || !strings.HasPrefix(err.Error(), "read rule file: ") {
		t.Errorf("missing file: error %v, want read rule file: ...", err)
	}
	path := filepath.Join(dir, "bad.js")
	writeFile(t, path, "true &&")
	if _, err := NewJSFile(path, JSOptions{}, true); err == nil || err.Error() != "compile rule: "+path+":1:8: Unexpected end of input" {
		t.Errorf("bad file: error %v", err)
	}
}
