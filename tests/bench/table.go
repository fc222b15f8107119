package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

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

// atLeast is the check of a "ratio >= min" target, atMost of "<= max" on
// the jailed median, overAtMost of "<= max over direct".
func atLeast(min float64) func(*row) bool { return func(r *row) bool { return r.Ratio >= min } }
func atMost(max float64) func(*row) bool  { return func(r *row) bool { return r.MedianJailed <= max } }
func overAtMost(max float64) func(*row) bool {
	return func(r *row) bool { return r.OverDirect <= max }
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
	fmt.Fprintf(&b, "| %-30s | %-6s | %11s | %11s | %14s | %-32s |\n", "row", "unit", "direct", "jailed", "jailed/direct", "target")
	fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 32), strings.Repeat("-", 8), strings.Repeat("-", 12)+":", strings.Repeat("-", 12)+":", strings.Repeat("-", 15)+":", strings.Repeat("-", 34))
	for _, r := range rows {
		direct, jailed, vs := "-", "-", "-"
		if r.Error != "" {
			jailed = "n/a"
		} else if len(r.Jailed) > 0 {
			jailed = num(r.MedianJailed)
		}
		if len(r.Direct) > 0 && len(r.Jailed) > 0 {
			direct = num(r.MedianDirect)
			vs = fmt.Sprintf("%.2f", r.Ratio)
			if r.Unit == "ms" {
				vs = fmt.Sprintf("%+.1f ms", r.OverDirect)
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
		fmt.Fprintf(&b, "| %-30s | %-6s | %11s | %11s | %14s | %-32s |\n", r.Name, r.Unit, direct, jailed, vs, target)
	}
	return b.String()
}

func num(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
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

	// Filled by the harness: CPU time per request (µs) of the load
	// client, of the proxy (ebpfjail or a peer, from /proc over the
	// measurement) and of the harness process, which is the origin.
	clientCPU, proxyCPU, originCPU float64
}

// parseResult finds loadclient's JSON line (the last line starting "{").
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

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// parseProcStatCPU reads utime+stime (all threads of the process, not its
// children) from the text of /proc/PID/stat, in µs.
func parseProcStatCPU(stat []byte) (float64, error) {
	s := string(stat)
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat %q: no ')'", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the name", len(f))
	}
	var ticks float64
	for _, x := range f[11:13] {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat time %q: %w", x, err)
		}
		ticks += float64(v)
	}
	return ticks * 1e6 / clockTicks, nil
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

// farmFigure is one line of farm-bench's report: min, median, max.
type farmFigure struct{ Min, Median, Max float64 }

// parseFarmBench reads the figure lines of farm-bench's report ("A wall s
// 0.011 0.012 0.012") by their name ("A wall s"). Lines whose last three
// words are not numbers (headers, ratios that are n/a) are left out.
func parseFarmBench(out string) map[string]farmFigure {
	figs := map[string]farmFigure{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || (f[0] != "A" && f[0] != "B") {
			continue
		}
		var v [3]float64
		ok := true
		for i, x := range f[len(f)-3:] {
			n, err := strconv.ParseFloat(x, 64)
			if err != nil {
				ok = false
				break
			}
			v[i] = n
		}
		if ok {
			figs[strings.Join(f[:len(f)-3], " ")] = farmFigure{v[0], v[1], v[2]}
		}
	}
	return figs
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// peerCell is one cell of the peers table: a ratio to direct (or MiB for
// the RSS row), or why there is none.
type peerCell struct {
	samples []float64 // the proxied side's, one per round
	direct  []float64 // direct's in the same rounds; none for absolute rows
	why     string    // "n/a (...)" or "–"
}

// value is the cell's text: the ratio of the medians to two places, the
// median itself when there is no direct, or why.
func (c *peerCell) value() string {
	switch {
	case c == nil:
		return "–"
	case c.why != "":
		return c.why
	case len(c.samples) == 0:
		return "n/a (not measured)"
	case len(c.direct) == 0:
		return strconv.FormatFloat(median(c.samples), 'f', 1, 64)
	}
	return fmt.Sprintf("%.2f", median(c.samples)/median(c.direct))
}

// peersTable is the Markdown table of the peers benchmark: one row per
// name in rowNames, one column per name in cols, cells[row][col].
func peersTable(rowNames, cols []string, cells map[string]map[string]*peerCell) string {
	var b strings.Builder
	b.WriteString("| row (ratio to direct) |")
	sep := "|---|"
	for _, c := range cols {
		b.WriteString(" " + c + " |")
		sep += "---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, r := range rowNames {
		b.WriteString("| " + r + " |")
		for _, c := range cols {
			b.WriteString(" " + cells[r][c].value() + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
