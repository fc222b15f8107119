package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/ratelog"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// t0 is a time with a sub-millisecond part, to check it is cut, not shown.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)

// requestLine is the acceptance regexp for --request-log lines.
var requestLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [+-] [A-Z]+ \S+$`)

func req(verdict, method, url string) event.Event {
	return event.Event{V: 1, Type: event.TypeRequest, Time: t0, Verdict: verdict, Reason: "rule",
		Method: method, URL: url, PID: 123, Comm: "curl"}
}

func TestRequestLogLines(t *testing.T) {
	local := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		name string
		e    event.Event
		want string // "" when nothing is written
	}{
		{"allow", req(event.Allow, "GET", "https://host/path"), "2026-01-02T03:04:05.678Z + GET https://host/path"},
		{"deny", req(event.Deny, "POST", "http://x.test/a?b=1&c=2"), "2026-01-02T03:04:05.678Z - POST http://x.test/a?b=1&c=2"},
		{"no verdict fails closed", req("", "GET", "https://host/"), "2026-01-02T03:04:05.678Z - GET https://host/"},
		{"spliced", req(event.Allow, "CONNECT", "https://host:443"), "2026-01-02T03:04:05.678Z + CONNECT https://host:443"},
		{"local time is written in UTC", func() event.Event {
			e := req(event.Allow, "GET", "https://host/")
			e.Time = t0.In(local)
			return e
		}(), "2026-01-02T03:04:05.678Z + GET https://host/"},
		{"space", req(event.Allow, "GET", "https://host/a b"), "2026-01-02T03:04:05.678Z + GET https://host/a%20b"},
		{"newline cannot forge a line", req(event.Deny, "GET", "https://host/a\n2026-01-02T03:04:05.678Z + GET https://evil/"),
			"2026-01-02T03:04:05.678Z - GET https://host/a%0A2026-01-02T03:04:05.678Z%20+%20GET%20https://evil/"},
		{"tab, DEL, non-ASCII", req(event.Allow, "GET", "https://host/\t\x7fé"), "2026-01-02T03:04:05.678Z + GET https://host/%09%7F%C3%A9"},
		{"empty url", req(event.Allow, "GET", ""), "2026-01-02T03:04:05.678Z + GET -"},
		{"lower-case method", req(event.Allow, "propfind", "https://h/"), "2026-01-02T03:04:05.678Z + PROPFIND https://h/"},
		{"method with a dash", req(event.Allow, "VERSION-CONTROL", "https://h/"), "2026-01-02T03:04:05.678Z + VERSIONCONTROL https://h/"},
		{"empty method", req(event.Allow, "", "https://h/"), "2026-01-02T03:04:05.678Z + UNKNOWN https://h/"},
		{"connection ignored", event.Event{Type: event.TypeConnection, Time: t0, Verdict: event.Deny, URL: "tcp://h:22"}, ""},
		{"dns ignored", event.Event{Type: event.TypeDNS, Time: t0, Verdict: event.Allow, Name: "h"}, ""},
		{"exec ignored", event.Event{Type: event.TypeExec, Time: t0, Exe: "/bin/sh"}, ""},
		{"summary ignored", event.Event{Type: event.TypeSummary, Time: t0, Summary: &event.Summary{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewRequestLog(&buf).Emit(tt.e)
			want := ""
			if tt.want != "" {
				want = tt.want + "\n"
			}
			if got := buf.String(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if tt.want != "" && !requestLine.MatchString(tt.want) {
				t.Errorf("%q does not match %v", tt.want, requestLine)
			}
		})
	}
}

// TestRequestLogStampsZeroTime: a producer that leaves Time zero still
// gets a well-formed, current line.
func TestRequestLogStampsZeroTime(t *testing.T) {
	var buf bytes.Buffer
	before := time.Now().UTC().Truncate(time.Millisecond)
	e := req(event.Allow, "GET", "https://h/")
	e.Time = time.Time{}
	NewRequestLog(&buf).Emit(e)
	line := strings.TrimSuffix(buf.String(), "\n")
	if !requestLine.MatchString(line) {
		t.Fatalf("got %q, which does not match %v", line, requestLine)
	}
	got, err := time.Parse("2006-01-02T15:04:05.000Z", strings.Fields(line)[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("time %v is not now", got)
	}
}

// lineChecker is a writer that fails the test when a Write is not
// exactly one whole line: what makes O_APPEND writes atomic per line.
type lineChecker struct {
	t  *testing.T
	mu sync.Mutex
	w  io.Writer
}

func (c *lineChecker) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') != len(p)-1 {
		c.t.Errorf("a Write that is not one line: %q", p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

// TestConcurrentEmitWritesWholeLines has 50 goroutines emit to each
// writing sink at once, appending to a real O_APPEND file, and checks
// that the file holds only whole, well-formed lines, all of them.
func TestConcurrentEmitWritesWholeLines(t *testing.T) {
	const goroutines, perG = 50, 40
	sinks := []struct {
		name  string
		new   func(io.Writer) Sink
		check func(line string) error
	}{
		{"request log", func(w io.Writer) Sink { return NewRequestLog(w) }, func(l string) error {
			if !requestLine.MatchString(l) {
				return fmt.Errorf("does not match %v", requestLine)
			}
			return nil
		}},
		{"json", func(w io.Writer) Sink { return NewJSON(w) }, func(l string) error {
			var e event.Event
			return json.Unmarshal([]byte(l), &e)
		}},
		{"human", func(w io.Writer) Sink {
			h := NewHuman(w, 1)
			// Every line, similar or not: this is about interleaving.
			h.lim = ratelog.NewLimiter(math.MaxInt, time.Hour)
			return h
		}, func(l string) error {
			if !strings.HasPrefix(l, "ebpfjail: allowed GET https://host.test/") && !strings.HasPrefix(l, "ebpfjail: denied GET https://host.test/") {
				return fmt.Errorf("not a request line")
			}
			return nil
		}},
	}
	for _, s := range sinks {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			sink := s.new(&lineChecker{t: t, w: f})
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range perG {
						v := event.Allow
						if i%3 == 0 {
							v = event.Deny
						}
						// Long URLs, so that an unlocked writer would
						// interleave.
						u := fmt.Sprintf("https://host.test/%d/%d/%s", g, i, strings.Repeat("x", 200+i))
						sink.Emit(req(v, "GET", u))
					}
				})
			}
			wg.Wait()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 || b[len(b)-1] != '\n' {
				t.Fatal("the file does not end with a newline")
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			n := 0
			seen := map[string]bool{}
			for sc.Scan() {
				n++
				if err := s.check(sc.Text()); err != nil {
					t.Fatalf("line %d %q: %v", n, sc.Text(), err)
				}
				seen[sc.Text()] = true
			}
			if n != goroutines*perG || len(seen) != n {
				t.Errorf("got %d lines (%d distinct), want %d", n, len(seen), goroutines*perG)
			}
		})
	}
}

func TestJSONLines(t *testing.T) {
	events := []event.Event{
		req(event.Allow, "GET", "https://host/a?b=1&c=<2>"),
		{Type: event.TypeConnection, Verdict: event.Deny, Reason: "non-HTTP", URL: "tcp://h:22", Host: "h", Port: 22, Scheme: "tcp"},
		{V: 1, Type: event.TypeDNS, Time: t0, Verdict: event.Allow, Name: "h\u2028x", QType: "A", Rcode: "NOERROR"},
		{V: 1, Type: event.TypeExec, Time: t0, PID: 7, Argv: []string{"sh", "-c", "echo 'a\nb'"}},
		{V: 1, Type: event.TypeSummary, Time: t0, Summary: &event.Summary{ExitStatus: 3, Processes: []event.Process{{Comm: "sh", PIDs: []uint32{7}}}}},
	}
	var buf bytes.Buffer
	j := NewJSON(&buf)
	before := time.Now().UTC().Truncate(time.Millisecond)
	for _, e := range events {
		j.Emit(e)
	}
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(events), buf.String())
	}
	for i, line := range lines {
		var got event.Event
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		want := events[i]
		if want.V == 0 {
			want.V = event.Version
		}
		if want.Time.IsZero() {
			// Stamped: now, to the millisecond.
			if got.Time.Before(before) || got.Time.After(time.Now()) || got.Time.Nanosecond()%int(time.Millisecond) != 0 {
				t.Errorf("line %d: time %v, want now to the millisecond", i, got.Time)
			}
			want.Time = got.Time
		} else {
			want.Time = want.Time.Truncate(time.Millisecond)
		}
		// Round trip: re-encoding what was read gives the same line.
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			t.Errorf("line %d round trip:\n got: %s\nwant: %s", i, a, b)
		}
	}
	if !strings.Contains(lines[0], `"url":"https://host/a?b=1&c=<2>"`) {
		t.Errorf("URL is HTML-escaped: %s", lines[0])
	}
	if !strings.Contains(lines[0], `"time":"2026-01-02T03:04:05.678Z"`) {
		t.Errorf("time is not UTC milliseconds: %s", lines[0])
	}
}

// TestJSONEncodeError: an event that cannot be encoded writes nothing and
// is reported by Err.
func TestJSONEncodeError(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSON(&buf)
	e := req(event.Allow, "GET", "https://h/")
	e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	j.Emit(e)
	if buf.Len() != 0 || j.Err() == nil {
		t.Errorf("got %q and err %v, want nothing and an error", buf.String(), j.Err())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestWriteErrorsAreKept(t *testing.T) {
	rl, j, h := NewRequestLog(failWriter{}), NewJSON(failWriter{}), NewHuman(failWriter{}, 2)
	for _, s := range []Sink{rl, j, h} {
		s.Emit(req(event.Deny, "GET", "https://h/"))
	}
	for name, err := range map[string]error{"request log": rl.Err(), "json": j.Err(), "human": h.Err()} {
		if err != io.ErrShortWrite {
			t.Errorf("%s: Err() = %v, want %v", name, err, io.ErrShortWrite)
		}
	}
}

func TestFirstWriteErrorIsReportedOnceAndLostLinesCounted(t *testing.T) {
	rl, j := NewRequestLog(failWriter{}), NewJSON(failWriter{})
	var calls [2][]error
	rl.OnError(func(err error) { calls[0] = append(calls[0], err) })
	j.OnError(func(err error) { calls[1] = append(calls[1], err) })
	for range 5 {
		rl.Emit(req(event.Allow, "GET", "https://h/"))
		j.Emit(req(event.Deny, "GET", "https://h/"))
	}
	for i, name := range []string{"request log", "json"} {
		if len(calls[i]) != 1 || calls[i][0] != io.ErrShortWrite {
			t.Errorf("%s: OnError calls got %v, want exactly one with %v", name, calls[i], io.ErrShortWrite)
		}
	}
	if rl.Lost() != 5 || j.Lost() != 5 {
		t.Errorf("lost lines: got %d and %d, want 5 and 5", rl.Lost(), j.Lost())
	}
}

func TestFanout(t *testing.T) {
	var got [2][]event.Event
	var nilLog *RequestLog
	var nilAudit *Audit
	s := Fanout(nil, SinkFunc(func(e event.Event) { got[0] = append(got[0], e) }), nilLog, nilAudit,
		SinkFunc(func(e event.Event) { got[1] = append(got[1], e) }))
	if n := len(s.(fanout)); n != 2 {
		t.Fatalf("got %d live sinks, want 2 (nil and typed nil skipped)", n)
	}
	s.Emit(event.Event{Type: event.TypeExec})
	a, b := got[0], got[1]
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("got %d and %d events, want 1 each", len(a), len(b))
	}
	if a[0].V != event.Version || a[0].Time.IsZero() || a[0].Time.Location() != time.UTC {
		t.Errorf("not stamped: %+v", a[0])
	}
	if !a[0].Time.Equal(b[0].Time) {
		t.Errorf("sinks got different times: %v, %v", a[0].Time, b[0].Time)
	}
	Fanout().Emit(event.Event{}) // no sinks: nothing to do, no panic
}

// TestNilSinks: a sink a flag did not ask for can be used as is.
func TestNilSinks(t *testing.T) {
	var rl *RequestLog
	var j *JSON
	var h *Human
	var a *Audit
	for _, s := range []Sink{rl, j, h, a} {
		s.Emit(req(event.Allow, "GET", "https://h/"))
	}
	if rl.Err() != nil || j.Err() != nil || h.Err() != nil {
		t.Error("nil sinks report errors")
	}
	if s := a.Summary(0, 0); len(s.Processes) != 0 {
		t.Errorf("nil audit: %+v", s)
	}
}
