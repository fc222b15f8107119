package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// mode is how much of each measurement one run takes.
type mode struct {
	name     string
	rounds   int           // interleaved direct/jailed rounds
	dur      time.Duration // per request-rate measurement
	bigBytes int64         // the "64 MiB" download
	startups int           // start-up runs per round, each side
	hold     int           // connections held for the RSS row
}

var modes = map[string]mode{
	"full":  {name: "full", rounds: 5, dur: 2 * time.Second, bigBytes: 64 << 20, startups: 10, hold: 1000},
	"quick": {name: "quick", rounds: 1, dur: 300 * time.Millisecond, bigBytes: 8 << 20, startups: 3, hold: 1000},
}

// benchHost is the origin's name; ebpfjail learns its address from
// --resolve, the direct client from -connect.
const benchHost = "bench.test"

// row is one line of the table: samples of both sides, one per round.
type row struct {
	Name   string    `json:"-"`    // as in the table (indented under its row)
	Key    string    `json:"name"` // Name without the indentation
	Unit   string    `json:"unit"`
	Better string    `json:"better"` // "higher" or "lower"
	Target string    `json:"target,omitempty"`
	Direct []float64 `json:"direct_samples,omitempty"`
	Jailed []float64 `json:"jailed_samples"`

	MedianDirect float64 `json:"median_direct,omitempty"`
	MedianJailed float64 `json:"median_jailed"`
	// Ratio is jailed/direct; OverDirect is jailed-direct (start-up).
	Ratio      float64 `json:"ratio,omitempty"`
	OverDirect float64 `json:"over_direct,omitempty"`
	Met        *bool   `json:"target_met,omitempty"`
	Error      string  `json:"error,omitempty"`

	// check decides Met from the medians; nil for rows without a target.
	check func(r *row) bool
}

// env is what every measurement needs.
type env struct {
	t       *testing.T
	bin     string // ebpfjail
	client  string // loadclient, runnable by nobody
	caPEM   string // the origin's test CA
	ip      string // the origin's IPv4
	timeout time.Duration
}

func TestSideBySide(t *testing.T) {
	m, ok := modes[os.Getenv("EBPFJAIL_BENCH")]
	if !ok {
		t.Skip("set EBPFJAIL_BENCH=full (make bench) or quick")
	}
	testutil.RequireRoot(t)
	// Every ebpfjail run sweeps the jails of dead supervisors: a test run
	// that waits for its own --cleanup on the same machine holds off.
	testutil.SweepShared(t)
	// EBPFJAIL_BENCH_ONLY=REGEXP runs only the matching measurements (by
	// their progress names: "https new c=1", "start-up", "rule", "rss"),
	// e.g. to profile one with EBPFJAIL_CPUPROFILE, which reaches ebpfjail.
	only := regexp.MustCompile(os.Getenv("EBPFJAIL_BENCH_ONLY"))
	e := &env{t: t, bin: ebpfjailBin(t), client: buildClient(t), timeout: 3 * time.Minute}
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	h.ServeHTTP(t, 80)
	h.ServeHTTPS(t, 443, ca, benchHost)
	e.caPEM, e.ip = ca.PEMPath, h.IPv4.String()

	bigName := fmt.Sprintf("%d MiB", m.bigBytes>>20)
	rows, order := newRows(m, bigName)
	exps := experiments(rows, m, bigName)
	fmt.Printf("side-by-side benchmark (%s): %d round(s), %s per rate, %s download; origin %s in netns %s\n",
		m.name, m.rounds, m.dur, bigName, e.ip, h.Name)
	e.rounds(m, rows, exps, only)
	measureRules(t, rows, only)
	if !only.MatchString("rss") {
		// skipped
	} else if hwm, rss, err := e.rssWithConns(m.hold); err != nil {
		t.Errorf("rss with %d connections: %v", m.hold, err)
	} else {
		order[len(order)-2].Jailed = []float64{hwm}
		order[len(order)-1].Jailed = []float64{rss}
		fmt.Printf("ebpfjail with %d connections open: VmHWM %.1f MiB, VmRSS %.1f MiB\n", m.hold, hwm, rss)
	}
	report(t, m, order)
}

// rows are the table's rows by name.
type rows map[string]*row

// put adds a sample of one side to the row called name.
func (rs rows) put(name string, direct bool, v float64) {
	r := rs[name]
	if direct {
		r.Direct = append(r.Direct, v)
	} else {
		r.Jailed = append(r.Jailed, v)
	}
}

// newRows returns the table's rows by name and in table order.
func newRows(m mode, bigName string) (rows, []*row) {
	atLeast := func(min float64) func(*row) bool { return func(r *row) bool { return r.Ratio >= min } }
	rs := rows{}
	add := func(r *row) *row { rs[r.Name] = r; return r }
	// Rows in table order.
	order := []*row{
		add(&row{Name: "HTTPS new conn c=1", Unit: "req/s", Better: "higher", Target: "ratio >= 0.6", check: atLeast(0.6)}),
		add(&row{Name: "  p50 (new conn c=1)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  p99 (new conn c=1)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  CPU/req (new conn c=1)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  of which ebpfjail (c=1)", Unit: "us", Better: "lower"}),
		add(&row{Name: "HTTPS new conn c=32", Unit: "req/s", Better: "higher", Target: "ratio >= 0.6", check: atLeast(0.6)}),
		add(&row{Name: "  CPU/req (new conn c=32)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  of which ebpfjail (c=32)", Unit: "us", Better: "lower"}),
		add(&row{Name: "HTTPS keep-alive c=32", Unit: "req/s", Better: "higher", Target: "ratio >= 0.8", check: atLeast(0.8)}),
		add(&row{Name: "  p50 (k-a c=32)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  p99 (k-a c=32)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  CPU/req (k-a c=32)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  of which ebpfjail (k-a)", Unit: "us", Better: "lower"}),
		add(&row{Name: "HTTP new conn c=1", Unit: "req/s", Better: "higher"}),
		add(&row{Name: "  CPU/req (HTTP c=1)", Unit: "us", Better: "lower"}),
		add(&row{Name: "  of which ebpfjail (HTTP)", Unit: "us", Better: "lower"}),
		add(&row{Name: bigName + " via MITM", Unit: "MB/s", Better: "higher", Target: "ratio >= 0.6", check: atLeast(0.6)}),
		add(&row{Name: bigName + " via --no-mitm", Unit: "MB/s", Better: "higher", Target: "ratio >= 0.85", check: atLeast(0.85)}),
		add(&row{Name: "start-up (-- true)", Unit: "ms", Better: "lower", Target: "<= 30 ms over true",
			check: func(r *row) bool { return r.OverDirect <= 30 }}),
		add(&row{Name: "rule `true`", Unit: "ns/op", Better: "lower", Target: "<= 1000 ns",
			check: func(r *row) bool { return r.MedianJailed <= 1000 }}),
		add(&row{Name: "rule host+method", Unit: "ns/op", Better: "lower", Target: "<= 1000 ns",
			check: func(r *row) bool { return r.MedianJailed <= 1000 }}),
		add(&row{Name: fmt.Sprintf("RSS peak, %d conns", m.hold), Unit: "MiB", Better: "lower", Target: "<= 60 MiB",
			check: func(r *row) bool { return r.MedianJailed <= 60 }}),
		add(&row{Name: fmt.Sprintf("RSS now, %d conns", m.hold), Unit: "MiB", Better: "lower"}),
	}
	return rs, order
}

// experiment is one load-client invocation and the rows it fills.
type experiment struct {
	name string
	// cpuRow gets the CPU time per request of all processes (client,
	// origin, ebpfjail), shareRow ebpfjail's part of it.
	cpuRow, shareRow string
	extra            []string // ebpfjail flags
	args             []string // loadclient arguments
	fill             func(res clientResult, direct bool)
}

// experiments are the load-client measurements, filling rs.
func experiments(rs rows, m mode, bigName string) []experiment {
	https := "https://" + benchHost + "/"
	big := fmt.Sprintf("https://%s/bytes?n=%d", benchHost, m.bigBytes)
	dur := m.dur.String()
	rate := func(name, p50, p99 string) func(clientResult, bool) {
		return func(res clientResult, direct bool) {
			rs.put(name, direct, res.PerSec)
			if p50 != "" {
				rs.put(p50, direct, res.P50us)
				rs.put(p99, direct, res.P99us)
			}
		}
	}
	mbps := func(name string) func(clientResult, bool) {
		return func(res clientResult, direct bool) { rs.put(name, direct, res.PerSec/1e6) }
	}
	return []experiment{
		{name: "https new c=1", args: []string{"rate", "-new", "-c", "1", "-d", dur, "-url", https},
			fill:   rate("HTTPS new conn c=1", "  p50 (new conn c=1)", "  p99 (new conn c=1)"),
			cpuRow: "  CPU/req (new conn c=1)", shareRow: "  of which ebpfjail (c=1)"},
		{name: "https new c=32", args: []string{"rate", "-new", "-c", "32", "-d", dur, "-url", https},
			fill:   rate("HTTPS new conn c=32", "", ""),
			cpuRow: "  CPU/req (new conn c=32)", shareRow: "  of which ebpfjail (c=32)"},
		{name: "https keep-alive c=32", args: []string{"rate", "-c", "32", "-d", dur, "-url", https},
			fill:   rate("HTTPS keep-alive c=32", "  p50 (k-a c=32)", "  p99 (k-a c=32)"),
			cpuRow: "  CPU/req (k-a c=32)", shareRow: "  of which ebpfjail (k-a)"},
		{name: "http new c=1", args: []string{"rate", "-new", "-c", "1", "-d", dur, "-url", "http://" + benchHost + "/"},
			fill:   rate("HTTP new conn c=1", "", ""),
			cpuRow: "  CPU/req (HTTP c=1)", shareRow: "  of which ebpfjail (HTTP)"},
		{name: "big via mitm", args: []string{"get", "-url", big}, fill: mbps(bigName + " via MITM")},
		{name: "big via --no-mitm", extra: []string{"--no-mitm", benchHost}, args: []string{"get", "-url", big},
			fill: mbps(bigName + " via --no-mitm")},
	}
}

// rounds runs the experiments and the start-up measurement m.rounds times,
// direct and jailed interleaved. An experiment that fails is not run again.
func (e *env) rounds(m mode, rs rows, exps []experiment, only *regexp.Regexp) {
	failed := map[string]string{}
	for round := 1; round <= m.rounds; round++ {
		for i, x := range exps {
			if failed[x.name] != "" || !only.MatchString(x.name) {
				continue
			}
			// Alternate which side goes first, so a drift in the machine's
			// load does not always favour the same side.
			sides := []bool{true, false}
			if (round+i)%2 == 0 {
				sides = []bool{false, true}
			}
			got, cpu, err := e.experiment(rs, x, sides)
			if err != nil {
				failed[x.name] = err.Error()
				continue
			}
			fmt.Printf("round %d/%d  %-24s direct %10.1f  jailed %10.1f  %-5s  CPU µs/req: %s vs %s\n", round, m.rounds, x.name, got[0], got[1], unitOf(x.args[0]), cpu[0], cpu[1])
		}
		if !only.MatchString("start-up") {
			continue
		}
		d, j, err := e.startups(m.startups)
		if err != nil {
			e.t.Errorf("start-up: %v", err)
		} else {
			rs["start-up (-- true)"].Direct = append(rs["start-up (-- true)"].Direct, d)
			rs["start-up (-- true)"].Jailed = append(rs["start-up (-- true)"].Jailed, j)
			fmt.Printf("round %d/%d  %-24s direct %10.2f ms  jailed %10.2f ms (median of %d)\n", round, m.rounds, "start-up", d, j, m.startups)
		}
	}
}

// experiment runs x once on each side, in the order of sides, and returns
// the value and the CPU time per request of each side (direct first).
func (e *env) experiment(rs rows, x experiment, sides []bool) (got [2]float64, cpu [2]string, err error) {
	for _, direct := range sides {
		res, err := e.runClient(direct, x.extra, x.args...)
		if err != nil {
			e.t.Errorf("%s (%s): %v", x.name, side(direct), err)
			return got, cpu, err
		}
		x.fill(res, direct)
		v := res.PerSec
		if x.args[0] == "get" {
			v /= 1e6
		}
		i := 1
		if direct {
			i = 0
		}
		got[i] = v
		cpu[i] = fmt.Sprintf("%.0f", res.clientCPU+res.originCPU+res.proxyCPU)
		if x.cpuRow != "" {
			rs.put(x.cpuRow, direct, res.clientCPU+res.originCPU+res.proxyCPU)
			if !direct {
				rs.put(x.shareRow, false, res.proxyCPU)
			}
		}
	}
	return got, cpu, nil
}

// measureRules fills the rule rows: the cost of one evaluation in-process.
func measureRules(t *testing.T, rs rows, only *regexp.Regexp) {
	for _, rc := range []struct{ name, src string }{
		{"rule `true`", "true"},
		{"rule host+method", `r.host === 'api.example.com' && r.method === 'GET'`},
	} {
		if !only.MatchString("rule") {
			break
		}
		ns, err := ruleNsPerOp(rc.src)
		if err != nil {
			t.Errorf("%s: %v", rc.name, err)
			continue
		}
		rs[rc.name].Jailed = append(rs[rc.name].Jailed, ns)
		fmt.Printf("%-34s %10.0f ns/op\n", rc.name, ns)
	}
}

// report summarizes every row, fails for one not measured, and prints the
// table and writes it as JSON to $EBPFJAIL_BENCH_JSON.
func report(t *testing.T, m mode, order []*row) {
	for _, r := range order {
		summarize(r)
		if len(r.Jailed) == 0 && r.Error == "" && os.Getenv("EBPFJAIL_BENCH_ONLY") == "" {
			r.Error = "not measured"
			t.Errorf("row %q was not measured", r.Name)
		}
	}
	table := formatTable(order)
	fmt.Print("\n" + table)
	out := os.Getenv("EBPFJAIL_BENCH_JSON")
	if out == "" {
		// Named for this process: another run may write its own meanwhile.
		out = filepath.Join(os.TempDir(), fmt.Sprintf("ebpfjail-bench-%d.json", os.Getpid()))
	}
	if err := writeJSON(out, m, order); err != nil {
		t.Errorf("write %s: %v", out, err)
	} else {
		fmt.Printf("JSON: %s\n", out)
	}
}

func side(direct bool) string {
	if direct {
		return "direct"
	}
	return "jailed"
}

func unitOf(mode string) string {
	if mode == "get" {
		return "MB/s"
	}
	return "req/s"
}

// ebpfjailBin is $EBPFJAIL_BIN, or a fresh build.
func ebpfjailBin(t *testing.T) string {
	if b := os.Getenv("EBPFJAIL_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "ebpfjail")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ebpfjail").CombinedOutput(); err != nil {
		t.Fatalf("build ebpfjail: %v\n%s", err, out)
	}
	return bin
}

// buildClient builds the load client where the jailed user (nobody) can
// run it.
func buildClient(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ebpfjail-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "loadclient")
	if out, err := exec.Command("go", "build", "-o", bin, "./loadclient").CombinedOutput(); err != nil {
		t.Fatalf("build loadclient: %v\n%s", err, out)
	}
	return bin
}

// clientResult is loadclient's JSON line.
type clientResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	FirstErr string  `json:"first_error"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Bytes    int64   `json:"bytes"`
	Held     int     `json:"held"`
	CPUus    float64 `json:"cpu_us"`

	// Filled by runClient: CPU time per request (µs) of the load client,
	// of ebpfjail (its rusage, minus the client it waited for), and of
	// this process, which is the origin.
	clientCPU, proxyCPU, originCPU float64
}

// command is loadclient (or argv) run directly or inside ebpfjail with
// extra flags; the caller starts it. Cancelling ctx sends SIGTERM, which
// ebpfjail forwards before it tears the jail down, and SIGKILL 10 s later.
func (e *env) command(ctx context.Context, direct bool, extra []string, argv ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if direct {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	} else {
		args := append([]string{"--user", "nobody", "--js", "true", "--resolve", benchHost + ":" + e.ip}, extra...)
		args = append(append(args, "--"), argv...)
		cmd = exec.CommandContext(ctx, e.bin, args...)
	}
	// Both sides trust the origin's CA: the direct client through this,
	// ebpfjail upstream through this, and the jailed client through the
	// bundle ebpfjail builds from it and points SSL_CERT_FILE at.
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.caPEM)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (e *env) runClient(direct bool, extra []string, args ...string) (clientResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	argv := append([]string{e.client}, args...)
	argv = append(argv, "-connect", e.ip+":"+portOf(args))
	cmd := e.command(ctx, direct, extra, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := selfCPU()
	runErr := cmd.Run()
	origin := selfCPU() - before
	res, perr := parseResult(stdout.Bytes())
	if perr == nil && res.Requests > 0 && cmd.ProcessState != nil {
		n := float64(res.Requests)
		res.clientCPU, res.originCPU = res.CPUus/n, origin/n
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && !direct {
			// wait4's usage includes the children ebpfjail reaped.
			res.proxyCPU = (rusageUS(ru) - res.CPUus) / n
		}
	}
	switch {
	case perr != nil:
		return res, fmt.Errorf("%v (run: %v)\nstdout: %s\nstderr: %s", perr, runErr, stdout.String(), lastLines(stderr.String(), 10))
	case res.Errors > 0:
		return res, fmt.Errorf("%d of %d requests failed, first: %s\nstderr: %s", res.Errors, res.Errors+res.Requests, res.FirstErr, lastLines(stderr.String(), 10))
	case runErr != nil:
		return res, fmt.Errorf("run: %v\nstderr: %s", runErr, lastLines(stderr.String(), 10))
	case res.PerSec <= 0:
		return res, fmt.Errorf("nothing measured: %+v", res)
	}
	return res, nil
}

// selfCPU is this process's user+system time in µs.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return rusageUS(&ru)
}

func rusageUS(ru *syscall.Rusage) float64 {
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// portOf is the port of the -url among args (80 or 443).
func portOf(args []string) string {
	for i, a := range args {
		if a == "-url" && i+1 < len(args) && strings.HasPrefix(args[i+1], "http://") {
			return "80"
		}
	}
	return "443"
}

func parseResult(out []byte) (clientResult, error) {
	var res clientResult
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			if err := json.Unmarshal([]byte(lines[i]), &res); err != nil {
				return res, fmt.Errorf("parse loadclient output %q: %w", lines[i], err)
			}
			return res, nil
		}
	}
	return res, fmt.Errorf("no result from loadclient")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// startups times n runs of `true` and of `ebpfjail --js true -- true`,
// alternating, and returns the medians in milliseconds.
func (e *env) startups(n int) (direct, jailed float64, err error) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		return 0, 0, err
	}
	var ds, js []float64
	for range n {
		for _, d := range []bool{true, false} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := e.command(ctx, d, nil, truePath)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			ms := float64(time.Since(start).Microseconds()) / 1e3
			cancel()
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %v\n%s", side(d), err, lastLines(stderr.String(), 5))
			}
			if d {
				ds = append(ds, ms)
			} else {
				js = append(js, ms)
			}
		}
	}
	return median(ds), median(js), nil
}

// ruleNsPerOp is the cost of one evaluation of src by the JS engine
// ebpfjail uses, in process.
func ruleNsPerOp(src string) (float64, error) {
	js, err := rules.NewJS(src, "bench", rules.JSOptions{Timeout: time.Minute, Logger: testutil.DiscardLogger()})
	if err != nil {
		return 0, err
	}
	defer js.Close()
	req := &rules.Request{
		URL: "https://api.example.com/v1/messages?beta=true", Method: "GET", Scheme: "https",
		Host: "api.example.com", Port: 443, Path: "/v1/messages", RequesterIP: "127.0.0.1",
		Proc: rules.Proc{PID: 41234, PPID: 41200, UID: 65534, Comm: "curl", Exe: "/usr/bin/curl"},
	}
	var denied bool
	res := testing.Benchmark(func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if !js.Evaluate(ctx, req).Allow {
				denied = true
			}
		}
	})
	if denied {
		return 0, fmt.Errorf("rule %q denied the benchmark request", src)
	}
	if res.N == 0 {
		return 0, fmt.Errorf("benchmark did not run")
	}
	return float64(res.T.Nanoseconds()) / float64(res.N), nil
}

// rssWithConns jails a client holding n HTTPS connections through the
// MITM and reads ebpfjail's peak and current resident set (MiB) while they
// are open.
func (e *env) rssWithConns(n int) (hwm, rss float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	cmd := e.command(ctx, false, nil, e.client, "hold", "-n", strconv.Itoa(n),
		"-url", "https://"+benchHost+"/", "-connect", e.ip+":443")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		stdin.Close()
		if werr := cmd.Wait(); werr != nil && err == nil {
			err = fmt.Errorf("ebpfjail: %v\n%s", werr, lastLines(stderr.String(), 10))
		}
	}()
	sc := bufio.NewScanner(stdout)
	var line string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "{") {
			line = sc.Text()
			break
		}
	}
	res, err := parseResult([]byte(line))
	if err != nil {
		return 0, 0, fmt.Errorf("%v\nstderr: %s", err, lastLines(stderr.String(), 10))
	}
	if res.Errors > 0 || res.Held != n {
		return 0, 0, fmt.Errorf("held %d of %d connections: %s", res.Held, n, res.FirstErr)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	hwm, rss = statusMiB(status, "VmHWM:"), statusMiB(status, "VmRSS:")
	if hwm == 0 || rss == 0 {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in /proc/%d/status", cmd.Process.Pid)
	}
	// What the resident set is made of: anonymous memory (Go's heap and
	// stacks), mapped files (the binary, kernel BTF) and shared memory
	// (BPF ring buffers).
	fmt.Printf("ebpfjail's VmRSS: RssAnon %.1f MiB, RssFile %.1f MiB, RssShmem %.1f MiB\n",
		statusMiB(status, "RssAnon:"), statusMiB(status, "RssFile:"), statusMiB(status, "RssShmem:"))
	go io.Copy(io.Discard, stdout)
	return hwm, rss, nil
}

// statusMiB reads a "Key:   123 kB" line of /proc/PID/status, in MiB.
func statusMiB(status []byte, key string) float64 {
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(r *row) {
	r.Key = strings.TrimSpace(r.Name)
	if len(r.Jailed) == 0 {
		return
	}
	r.MedianJailed = round(median(r.Jailed))
	if len(r.Direct) > 0 {
		r.MedianDirect = round(median(r.Direct))
		if r.MedianDirect != 0 {
			r.Ratio = math.Round(r.MedianJailed/r.MedianDirect*1000) / 1000
		}
		r.OverDirect = round(r.MedianJailed - r.MedianDirect)
	}
	if r.check != nil {
		met := r.check(r)
		r.Met = &met
	}
}

func round(v float64) float64 { return math.Round(v*100) / 100 }

func formatTable(rows []*row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %-27s | %-6s | %11s | %11s | %14s | %-30s |\n", "row", "unit", "direct", "jailed", "jailed/direct", "target")
	fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 29), strings.Repeat("-", 8), strings.Repeat("-", 12)+":", strings.Repeat("-", 12)+":", strings.Repeat("-", 15)+":", strings.Repeat("-", 32))
	for _, r := range rows {
		direct, jailed, vs := "-", "-", "-"
		if r.Error != "" {
			jailed = "n/a"
		} else if len(r.Jailed) > 0 {
			jailed = num(r.MedianJailed)
		}
		if len(r.Direct) > 0 {
			direct = num(r.MedianDirect)
			vs = fmt.Sprintf("%.2f", r.Ratio)
			if r.Unit == "ms" {
				vs = fmt.Sprintf("+%.1f ms", r.OverDirect)
			}
		}
		target := r.Target
		if r.Met != nil {
			if *r.Met {
				target += " (met)"
			} else {
				target += " (NOT met)"
			}
		}
		fmt.Fprintf(&b, "| %-27s | %-6s | %11s | %11s | %14s | %-30s |\n", r.Name, r.Unit, direct, jailed, vs, target)
	}
	return b.String()
}

func num(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func writeJSON(path string, m mode, rows []*row) error {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	doc := struct {
		Mode     string    `json:"mode"`
		Rounds   int       `json:"rounds"`
		Time     time.Time `json:"time"`
		CPUs     int       `json:"cpus"`
		Kernel   string    `json:"kernel"`
		Go       string    `json:"go"`
		RateSecs float64   `json:"seconds_per_rate"`
		Rows     []*row    `json:"rows"`
	}{m.name, m.rounds, time.Now().UTC(), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version(), m.dur.Seconds(), rows}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
