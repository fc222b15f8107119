package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
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
	startups int           // later-jail start-up runs per round, each side
	hold     int           // connections held for the RSS row
}

var modes = map[string]mode{
	"full": {name: "full", rounds: 5, dur: 2 * time.Second, bigBytes: 64 << 20, startups: 20, hold: 1000},
	// quick keeps make test short and still measures every row.
	"quick": {name: "quick", rounds: 1, dur: 150 * time.Millisecond, bigBytes: 8 << 20, startups: 3, hold: 200},
}

// benchHost is the origin's name; ebpfjail learns its address from
// --resolve, the direct client from -connect.
const benchHost = "bench.test"

// tcpPort is the origin's raw byte server (neither HTTP nor TLS: "BYTES n"
// and a newline in, n bytes out) for the --tcp row.
const tcpPort = 9000

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
	// EBPFJAIL_BENCH_ONLY=REGEXP runs only the matching measurements (by
	// their progress names: "https new c=1", "start-up", "rule", "rss"),
	// e.g. to profile one with EBPFJAIL_CPUPROFILE, which reaches ebpfjail.
	only := regexp.MustCompile(os.Getenv("EBPFJAIL_BENCH_ONLY"))
	e, h := newEnv(t, 3*time.Minute)

	bigName := fmt.Sprintf("%d MiB", m.bigBytes>>20)
	rows, order := newRows(m, bigName)
	exps := experiments(rows, m, bigName, h.IPv4.String())
	fmt.Printf("side-by-side benchmark (%s): %d round(s), %s per rate, %s download; origin %s in netns %s; load average %s\n",
		m.name, m.rounds, m.dur, bigName, e.ip, h.Name, loadAvg())
	e.rounds(m, rows, exps, only)
	if m.name == "quick" {
		// testing.Benchmark runs each rule for -test.benchtime (1 s).
		flag.Set("test.benchtime", "100ms")
	}
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

// newEnv starts the origin (HTTP on 80, HTTPS on 443 with a certificate
// from a test CA, the raw byte server on tcpPort) in a test host, and
// builds the load client.
func newEnv(t *testing.T, timeout time.Duration) (*env, *testutil.Host) {
	testutil.RequireRoot(t)
	// Every ebpfjail run sweeps the jails of dead supervisors: a test run
	// that waits for its own --cleanup on the same machine holds off.
	testutil.SweepShared(t)
	e := &env{t: t, bin: ebpfjailBin(t), client: buildClient(t), timeout: timeout}
	h := testutil.NewHost(t)
	ca := testutil.NewTestCA(t)
	h.ServeHTTP(t, 80)
	h.ServeHTTPS(t, 443, ca, benchHost)
	testutil.Serve(h.Listen(t, "tcp", fmt.Sprintf("[::]:%d", tcpPort)), serveBytes)
	e.caPEM, e.ip = ca.PEMPath, h.IPv4.String()
	return e, h
}

// newRows returns the table's rows by name and in table order; the
// targets are the ratios to direct (or the bounds) the project aims at.
func newRows(m mode, bigName string) (rows, []*row) {
	rs := rows{}
	add := func(r *row) *row { rs[r.Name] = r; return r }
	rate := func(name, target string, check func(*row) bool) *row {
		return add(&row{Name: name, Unit: "req/s", Better: "higher", Target: target, check: check})
	}
	us := func(name string) *row { return add(&row{Name: name, Unit: "us", Better: "lower"}) }
	mbps := func(name, target string, check func(*row) bool) *row {
		return add(&row{Name: name, Unit: "MB/s", Better: "higher", Target: target, check: check})
	}
	ms := func(name, target string, check func(*row) bool) *row {
		return add(&row{Name: name, Unit: "ms", Better: "lower", Target: target, check: check})
	}
	order := []*row{
		rate("HTTPS new conn c=1", "ratio >= 0.75", atLeast(0.75)),
		us("  p50 (new conn c=1)"), us("  p99 (new conn c=1)"),
		us("  CPU/req (new conn c=1)"), us("  of which ebpfjail (new c=1)"),
		rate("HTTPS new conn c=32", "ratio >= 0.6", atLeast(0.6)),
		us("  CPU/req (new conn c=32)"), us("  of which ebpfjail (new c=32)"),
		rate("HTTPS keep-alive c=1", "", nil),
		us("  CPU/req (k-a c=1)"), us("  of which ebpfjail (k-a c=1)"),
		rate("HTTPS keep-alive c=32", "ratio >= 0.5", atLeast(0.5)),
		us("  p50 (k-a c=32)"), us("  p99 (k-a c=32)"), us("  CPU/req (k-a c=32)"),
		add(&row{Name: "  of which ebpfjail (k-a c=32)", Unit: "us", Better: "lower", Target: "<= 25 us", check: atMost(25)}),
		mbps("HTTPS "+bigName+" via MITM", "ratio >= 0.6", atLeast(0.6)),
		mbps("HTTPS "+bigName+" --no-mitm", "ratio >= 0.95", atLeast(0.95)),
		mbps(bigName+" CONNECT tunnel", "ratio >= 0.95", atLeast(0.95)),
		mbps(bigName+" --tcp tunnel", "ratio >= 0.95", atLeast(0.95)),
		rate("HTTP new conn c=1", "ratio >= 0.6", atLeast(0.6)),
		us("  CPU/req (HTTP new c=1)"), us("  of which ebpfjail (HTTP new)"),
		rate("HTTP keep-alive c=1", "", nil),
		rate("HTTP keep-alive c=32", "ratio >= 0.6", atLeast(0.6)),
		us("  CPU/req (HTTP k-a c=32)"), us("  of which ebpfjail (HTTP k-a)"),
		mbps("HTTP "+bigName, "", nil),
		ms("start-up, first jail", "<= 30 ms over true", overAtMost(30)),
		ms("start-up, later jails", "<= 15 ms over true", overAtMost(15)),
		ms("  CPU, later jails", "", nil),
		add(&row{Name: "rule `true`", Unit: "ns/op", Better: "lower", Target: "<= 1000 ns", check: atMost(1000)}),
		add(&row{Name: "rule host+method", Unit: "ns/op", Better: "lower", Target: "<= 1000 ns", check: atMost(1000)}),
		add(&row{Name: fmt.Sprintf("RSS peak, %d conns", m.hold), Unit: "MiB", Better: "lower", Target: "<= 45 MiB", check: atMost(45)}),
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
	jailedArgs       []string // more loadclient arguments, jailed side only
	fill             func(res clientResult, direct bool)
}

// experiments are the load-client measurements, filling rs.
func experiments(rs rows, m mode, bigName, ip string) []experiment {
	https, http := "https://"+benchHost+"/", "http://"+benchHost+"/"
	big := fmt.Sprintf("%sbytes?n=%d", https, m.bigBytes)
	bigHTTP := fmt.Sprintf("%sbytes?n=%d", http, m.bigBytes)
	tcpURL := fmt.Sprintf("tcp://%s:%d", benchHost, tcpPort)
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
	rateArgs := func(c string, newConn bool, u string) []string {
		a := []string{"rate", "-c", c, "-d", dur, "-url", u}
		if newConn {
			a = append(a, "-new")
		}
		return a
	}
	return []experiment{
		{name: "https new c=1", args: rateArgs("1", true, https),
			fill:   rate("HTTPS new conn c=1", "  p50 (new conn c=1)", "  p99 (new conn c=1)"),
			cpuRow: "  CPU/req (new conn c=1)", shareRow: "  of which ebpfjail (new c=1)"},
		{name: "https new c=32", args: rateArgs("32", true, https), fill: rate("HTTPS new conn c=32", "", ""),
			cpuRow: "  CPU/req (new conn c=32)", shareRow: "  of which ebpfjail (new c=32)"},
		{name: "https keep-alive c=1", args: rateArgs("1", false, https), fill: rate("HTTPS keep-alive c=1", "", ""),
			cpuRow: "  CPU/req (k-a c=1)", shareRow: "  of which ebpfjail (k-a c=1)"},
		{name: "https keep-alive c=32", args: rateArgs("32", false, https),
			fill:   rate("HTTPS keep-alive c=32", "  p50 (k-a c=32)", "  p99 (k-a c=32)"),
			cpuRow: "  CPU/req (k-a c=32)", shareRow: "  of which ebpfjail (k-a c=32)"},
		{name: "https big via mitm", args: []string{"get", "-url", big}, fill: mbps("HTTPS " + bigName + " via MITM")},
		{name: "https big --no-mitm", extra: []string{"--no-mitm", benchHost}, args: []string{"get", "-url", big},
			fill: mbps("HTTPS " + bigName + " --no-mitm")},
		// Jailed, the client asks for a tunnel (to any address on port 80:
		// ebpfjail answers a CONNECT itself) and speaks TLS in it, which
		// --no-mitm leaves unread; direct, it fetches the same URL.
		{name: "big connect tunnel", extra: []string{"--no-mitm", benchHost}, args: []string{"get", "-url", big},
			jailedArgs: []string{"-proxy", "http://" + ip + ":80"}, fill: mbps(bigName + " CONNECT tunnel")},
		{name: "big tcp tunnel", extra: []string{"--tcp"}, args: []string{"tcpget", "-url", tcpURL, "-n", strconv.FormatInt(m.bigBytes, 10)},
			fill: mbps(bigName + " --tcp tunnel")},
		{name: "http new c=1", args: rateArgs("1", true, http), fill: rate("HTTP new conn c=1", "", ""),
			cpuRow: "  CPU/req (HTTP new c=1)", shareRow: "  of which ebpfjail (HTTP new)"},
		{name: "http keep-alive c=1", args: rateArgs("1", false, http), fill: rate("HTTP keep-alive c=1", "", "")},
		{name: "http keep-alive c=32", args: rateArgs("32", false, http), fill: rate("HTTP keep-alive c=32", "", ""),
			cpuRow: "  CPU/req (HTTP k-a c=32)", shareRow: "  of which ebpfjail (HTTP k-a)"},
		{name: "http big", args: []string{"get", "-url", bigHTTP}, fill: mbps("HTTP " + bigName)},
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
		if only.MatchString("start-up") {
			e.startupRound(rs, m, round)
		}
	}
}

// startupRound measures the start-up rows once: the first jail (after
// $EBPFJAIL_BENCH_COLD, a shell command that drops whatever a jail keeps
// for the next one) and m.startups later jails, each against /bin/true.
func (e *env) startupRound(rs rows, m mode, round int) {
	if cold := os.Getenv("EBPFJAIL_BENCH_COLD"); cold != "" {
		if out, err := exec.Command("sh", "-c", cold).CombinedOutput(); err != nil {
			e.t.Errorf("EBPFJAIL_BENCH_COLD: %v\n%s", err, out)
			return
		}
	}
	first, err := e.startups(1, 0)
	if err != nil {
		e.t.Errorf("start-up, first jail: %v", err)
		return
	}
	later, err := e.startups(m.startups, 1)
	if err != nil {
		e.t.Errorf("start-up, later jails: %v", err)
		return
	}
	rs.put("start-up, first jail", true, first.trueMS)
	rs.put("start-up, first jail", false, first.jailMS)
	rs.put("start-up, later jails", true, later.trueMS)
	rs.put("start-up, later jails", false, later.jailMS)
	rs.put("  CPU, later jails", true, later.trueCPUMS)
	rs.put("  CPU, later jails", false, later.jailCPUMS)
	fmt.Printf("round %d/%d  %-24s true %6.2f ms  first jail %7.2f ms  later jails %7.2f ms (median of %d, %s; CPU %.1f ms)\n",
		round, m.rounds, "start-up", later.trueMS, first.jailMS, later.jailMS, m.startups, later.how, later.jailCPUMS)
}

// experiment runs x once on each side, in the order of sides, and returns
// the value and the CPU time per request of each side (direct first).
func (e *env) experiment(rs rows, x experiment, sides []bool) (got [2]float64, cpu [2]string, err error) {
	for _, direct := range sides {
		args := x.args
		if !direct {
			args = append(slices.Clone(args), x.jailedArgs...)
		}
		res, err := e.runClient(direct, x.extra, args...)
		if err != nil {
			e.t.Errorf("%s (%s): %v", x.name, side(direct), err)
			return got, cpu, err
		}
		x.fill(res, direct)
		i := 1
		if direct {
			i = 0
		}
		got[i] = scaled(x.args[0], res.PerSec)
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

// scaled is a loadclient rate in the table's unit: MB/s for downloads.
func scaled(mode string, perSec float64) float64 {
	if mode == "get" || mode == "tcpget" {
		return perSec / 1e6
	}
	return perSec
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
	fmt.Printf("load average at the end: %s\n", loadAvg())
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
	if mode == "get" || mode == "tcpget" {
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
	argv = append(argv, "-sync", "-connect", e.ip+":"+portOf(args))
	cmd := e.command(ctx, direct, extra, argv...)
	proxyPID := 0
	if !direct {
		proxyPID = -1 // ebpfjail is the command itself
	}
	return runLoad(cmd, proxyPID)
}

// runLoad runs a loadclient command with -sync, reading the CPU time of
// process proxyPID (-1: the command's own; 0: none) from /proc just
// before the load starts and just after it ends, so neither ebpfjail's
// start-up nor its teardown is counted.
func runLoad(cmd *exec.Cmd, proxyPID int) (clientResult, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return clientResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return clientResult{}, err
	}
	before := selfCPU()
	if err := cmd.Start(); err != nil {
		return clientResult{}, err
	}
	if proxyPID < 0 {
		proxyPID = cmd.Process.Pid
	}
	out, proxyCPU, syncErr := syncLoad(stdout, stdin, proxyPID)
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	runErr := cmd.Wait()
	origin := selfCPU() - before
	res, perr := parseResult(out)
	if perr == nil && res.Requests > 0 {
		n := float64(res.Requests)
		res.clientCPU, res.originCPU, res.proxyCPU = res.CPUus/n, origin/n, proxyCPU/n
	}
	switch {
	case perr != nil:
		return res, fmt.Errorf("%v (run: %v, sync: %v)\nstdout: %s\nstderr: %s", perr, runErr, syncErr, out, lastLines(stderr.String(), 10))
	case res.Errors > 0:
		return res, fmt.Errorf("%d of %d requests failed, first: %s\nstderr: %s", res.Errors, res.Errors+res.Requests, res.FirstErr, lastLines(stderr.String(), 10))
	case runErr != nil || syncErr != nil:
		return res, fmt.Errorf("run: %v, sync: %v\nstderr: %s", runErr, syncErr, lastLines(stderr.String(), 10))
	case res.PerSec <= 0:
		return res, fmt.Errorf("nothing measured: %+v", res)
	}
	return res, nil
}

// syncLoad waits for loadclient's "ready", reads pid's CPU time, lets the
// load go, and reads the CPU time again at the JSON line; it returns what
// loadclient printed and the CPU µs between the two readings.
func syncLoad(stdout io.Reader, stdin io.Writer, pid int) (out []byte, cpu float64, err error) {
	sc := bufio.NewScanner(stdout)
	var start float64
	for sc.Scan() {
		line := sc.Text()
		out = append(append(out, line...), '\n')
		switch {
		case line == "ready":
			if pid > 0 {
				if start, err = procCPU(pid); err != nil {
					return out, 0, err
				}
			}
			if _, err := io.WriteString(stdin, "go\n"); err != nil {
				return out, 0, err
			}
		case strings.HasPrefix(line, "{"):
			if pid <= 0 {
				return out, 0, nil
			}
			end, err := procCPU(pid)
			return out, end - start, err
		}
	}
	return out, 0, fmt.Errorf("loadclient ended without a result")
}

// procCPU is process pid's user+system time so far (all its threads, none
// of its children), in µs.
func procCPU(pid int) (float64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(stat)
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

// portOf is the port of the -url among args.
func portOf(args []string) string {
	for i, a := range args {
		if a != "-url" || i+1 >= len(args) {
			continue
		}
		u, err := url.Parse(args[i+1])
		if err != nil {
			break
		}
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "http" {
			return "80"
		}
	}
	return "443"
}

// startTimes are start-up medians: /bin/true and the jail's wall and CPU
// time, in ms, and how they were taken.
type startTimes struct {
	trueMS, jailMS, trueCPUMS, jailCPUMS float64
	how                                  string
}

// startups times n runs of `ebpfjail --user nobody --js true -- /bin/true` against n of
// /bin/true, alternating, after warmup runs of each that are not counted:
// with farm-bench when it is installed (the whole process timed from
// outside), else with the same pairing here.
func (e *env) startups(n, warmup int) (startTimes, error) {
	jail := []string{e.bin, "--user", "nobody", "--js", "true", "--", "/bin/true"}
	if fb, err := exec.LookPath("farm-bench"); err == nil {
		args := []string{"-n", strconv.Itoa(n), "--warmup", strconv.Itoa(warmup), "--timeout", "600", "--vs", "/bin/true", "--"}
		out, err := exec.Command(fb, append(args, jail...)...).CombinedOutput()
		if err != nil {
			return startTimes{}, fmt.Errorf("farm-bench: %v\n%s", err, lastLines(string(out), 10))
		}
		f := parseFarmBench(string(out))
		a, b := f["A wall s"], f["B wall s"]
		if a.Median == 0 || b.Median == 0 || !strings.Contains(string(out), fmt.Sprintf("A exit 0 (%d of %d)", n, n)) {
			return startTimes{}, fmt.Errorf("farm-bench: no wall times or a failed run in:\n%s", out)
		}
		return startTimes{trueMS: b.Median * 1e3, jailMS: a.Median * 1e3,
			trueCPUMS: f["B cpu s"].Median * 1e3, jailCPUMS: f["A cpu s"].Median * 1e3, how: "farm-bench"}, nil
	}
	return e.startupsHere(n, warmup, jail)
}

// startupsHere is startups without farm-bench: wall time from start to
// reaping, CPU time from the reaped process's rusage (its children's
// included).
func (e *env) startupsHere(n, warmup int, jail []string) (startTimes, error) {
	var walls, cpus [2][]float64
	for i := range n + warmup {
		for k, argv := range [][]string{jail, {"/bin/true"}} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			ms := float64(time.Since(start).Microseconds()) / 1e3
			cancel()
			if err != nil {
				return startTimes{}, fmt.Errorf("%s: %v\n%s", argv[0], err, lastLines(stderr.String(), 5))
			}
			if i >= warmup {
				walls[k] = append(walls[k], ms)
				cpus[k] = append(cpus[k], rusageUS(cmd.ProcessState.SysUsage().(*syscall.Rusage))/1e3)
			}
		}
	}
	return startTimes{trueMS: median(walls[1]), jailMS: median(walls[0]),
		trueCPUMS: median(cpus[1]), jailCPUMS: median(cpus[0]), how: "timed here"}, nil
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
	return holdRSS(cmd, n, -1)
}

// holdRSS runs cmd, a loadclient hold of n connections, and reads the
// peak and current resident set (MiB) of process pid (-1: cmd's own)
// while they are open.
func holdRSS(cmd *exec.Cmd, n, pid int) (hwm, rss float64, err error) {
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
	if pid < 0 {
		pid = cmd.Process.Pid
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	hwm, rss = statusMiB(status, "VmHWM:"), statusMiB(status, "VmRSS:")
	if hwm == 0 || rss == 0 {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in /proc/%d/status", pid)
	}
	// What the resident set is made of: anonymous memory (Go's heap and
	// stacks), mapped files (the binary, kernel BTF) and shared memory
	// (BPF ring buffers).
	fmt.Printf("process %d's VmRSS: RssAnon %.1f MiB, RssFile %.1f MiB, RssShmem %.1f MiB\n", pid,
		statusMiB(status, "RssAnon:"), statusMiB(status, "RssFile:"), statusMiB(status, "RssShmem:"))
	go io.Copy(io.Discard, stdout)
	return hwm, rss, nil
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

// serveBytes is the origin's raw byte server: "BYTES n" and a newline in,
// n zero bytes out, then the connection closes.
func serveBytes(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	var n int64
	if _, err := fmt.Sscanf(line, "BYTES %d\n", &n); err != nil || n < 0 {
		return
	}
	io.CopyN(c, zeros{}, n)
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
