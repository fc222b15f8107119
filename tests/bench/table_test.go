package bench

import (
	"strings"
	"testing"
)

func TestParseProcStatCPUAddsUserAndSystemTicks(t *testing.T) {
	// A name with spaces and a ')' of its own; utime 250, stime 50 ticks.
	stat := "4242 (eb (pf) jail) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 3 4 20 0 9 0 100 1000000 2000 18446744073709551615\n"
	got, err := parseProcStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3e6; got != want {
		t.Errorf("parseProcStatCPU = %v µs, want %v", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, err := parseProcStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseProcStatCPU(%q): no error", bad)
		}
	}
}

func TestParseFarmBenchReadsFigureLines(t *testing.T) {
	out := `farm-bench 3 | 2026-12-07, 2c/24GiB | Intel(R) Xeon(R) | quote the median
A = /bin/sleep 0.01
B = /bin/true
A exit 0 (3 of 3); its output was read and thrown away (0 bytes in the last run)
                     min      median         max   n: A 3, B 3; whole process
A user s           0.001       0.001       0.001
A cpu s            0.021       0.022       0.030
A wall s           0.011       0.012       0.019
A peak MiB          11.5        11.5        11.5
B wall s           0.001       0.002       0.009
A/B user      n/a: B's time was 0 in a pair (give B more work, or read cpu)
A/B wall          1.3265      7.3611     10.9831
`
	f := parseFarmBench(out)
	for name, want := range map[string]farmFigure{
		"A wall s":   {0.011, 0.012, 0.019},
		"A cpu s":    {0.021, 0.022, 0.030},
		"B wall s":   {0.001, 0.002, 0.009},
		"A peak MiB": {11.5, 11.5, 11.5},
	} {
		if got := f[name]; got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	for _, absent := range []string{"A/B user", "A exit 0 (3 of", "A ="} {
		if _, ok := f[absent]; ok {
			t.Errorf("%q parsed as a figure: %+v", absent, f)
		}
	}
}

func TestParseResultTakesTheLastJSONLine(t *testing.T) {
	res, err := parseResult([]byte("ready\n{\"requests\":1}\n{\"requests\":7,\"per_sec\":3.5,\"cpu_us\":12}\n"))
	if err != nil || res.Requests != 7 || res.PerSec != 3.5 || res.CPUus != 12 {
		t.Errorf("parseResult = %+v, %v; want 7 requests, 3.5/s, 12 µs", res, err)
	}
	if _, err := parseResult([]byte("ready\n")); err == nil {
		t.Error("parseResult without a JSON line: no error")
	}
	if _, err := parseResult([]byte("{broken\n")); err == nil {
		t.Error("parseResult of broken JSON: no error")
	}
}

func TestSummarizeAndTableSayWhetherTargetsAreMet(t *testing.T) {
	rs, order := newRows(modes["quick"], "8 MiB")
	rs.put("HTTPS new conn c=1", true, 1000)
	rs.put("HTTPS new conn c=1", true, 900)
	rs.put("HTTPS new conn c=1", true, 1100)
	rs.put("HTTPS new conn c=1", false, 800)
	rs.put("HTTPS keep-alive c=32", true, 100)
	rs.put("HTTPS keep-alive c=32", false, 40)
	rs.put("start-up, later jails", true, 1)
	rs.put("start-up, later jails", false, 12)
	for _, r := range order {
		summarize(r)
	}
	if r := rs["HTTPS new conn c=1"]; r.MedianDirect != 1000 || r.Ratio != 0.8 || r.Met == nil || !*r.Met {
		t.Errorf("new conn row: %+v; want median direct 1000, ratio 0.8, met", r)
	}
	if r := rs["HTTPS keep-alive c=32"]; r.Met == nil || *r.Met {
		t.Errorf("keep-alive row at 0.4 of direct: met %v, want not met", r.Met)
	}
	if r := rs["start-up, later jails"]; r.OverDirect != 11 || r.Met == nil || !*r.Met {
		t.Errorf("start-up row: over %v met %v; want +11, met", r.OverDirect, r.Met)
	}
	table := formatTable(order)
	for _, want := range []string{
		"| HTTPS new conn c=1             | req/s  |        1000 |         800 |           0.80 | ratio >= 0.75 (met)",
		"| HTTPS keep-alive c=32          | req/s  |         100 |       40.00 |           0.40 | ratio >= 0.5 (NOT met)",
		"| start-up, later jails          | ms     |        1.00 |       12.00 |       +11.0 ms | <= 15 ms over true (met)",
		"| HTTP keep-alive c=1            | req/s  |           - |           - |              - |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if n := strings.Count(table, "\n"); n != len(order)+2 {
		t.Errorf("table has %d lines, want %d (header, rule, rows)", n, len(order)+2)
	}
}

func TestStatusMiB(t *testing.T) {
	status := "Name:\tebpfjail\nVmHWM:\t   46080 kB\nVmRSS:\t   40960 kB\n"
	if got := statusMiB([]byte(status), "VmHWM:"); got != 45 {
		t.Errorf("VmHWM = %v MiB, want 45", got)
	}
	if got := statusMiB([]byte(status), "RssAnon:"); got != 0 {
		t.Errorf("missing key = %v, want 0", got)
	}
}

func TestPeersTableShowsRatiosMiBAndWhy(t *testing.T) {
	cols := []string{"squid", "goproxy", "ebpfjail"}
	cells := map[string]map[string]*peerCell{
		"HTTPS new conn c=1": {
			"squid":    {samples: []float64{40, 50, 45}, direct: []float64{100, 100, 90}},
			"goproxy":  {why: "n/a (go build failed)"},
			"ebpfjail": {samples: []float64{75}, direct: []float64{100}},
		},
		"peak RSS MiB, 1000 conns": {
			"squid": {samples: []float64{41.04}},
		},
	}
	got := peersTable([]string{"HTTPS new conn c=1", "peak RSS MiB, 1000 conns"}, cols, cells)
	want := "| row (ratio to direct) | squid | goproxy | ebpfjail |\n" +
		"|---|---|---|---|\n" +
		"| HTTPS new conn c=1 | 0.45 | n/a (go build failed) | 0.75 |\n" +
		"| peak RSS MiB, 1000 conns | 41.0 | – | – |\n"
	if got != want {
		t.Errorf("peersTable:\n%s\nwant:\n%s", got, want)
	}
}
