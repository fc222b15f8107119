package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// hostile is what a program under audit controls: its argv, the names it
// asks for, the Host it sends, its comm.
const hostile = `<script>document.documentElement.setAttribute("data-pwned","1")</script><img src=x onerror="document.title='pwned'">`

func writeEvents(t *testing.T, events []event.Event) string {
	t.Helper()
	var b bytes.Buffer
	j := NewJSON(&b)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, e := range events {
		e.V = event.Version
		e.Time = t0.Add(time.Duration(i) * 100 * time.Millisecond)
		j.Emit(e)
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReportHTMLEscapesWhatTheProgramChose: names, argv and comm with
// markup come out as text, and the page has no script but its own.
func TestReportHTMLEscapesWhatTheProgramChose(t *testing.T) {
	path := writeEvents(t, []event.Event{
		{Type: event.TypeExec, PID: 10, PPID: 1, Comm: "<b>x", Exe: "/tmp/" + hostile, Argv: []string{"x", hostile}},
		{Type: event.TypeDNS, PID: 10, Comm: "<b>x", Name: hostile, QType: "A"},
		{Type: event.TypeRequest, Verdict: event.Deny, PID: 10, Comm: "<b>x", Method: "GET", URL: "https://" + hostile + "/",
			Host: hostile, Port: 443},
		{Type: event.TypeRefused, PID: 10, Comm: "<b>x", Dst: hostile, Reason: hostile},
	})
	s, err := ReadSession(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, s); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(strings.ToLower(page), "<script"); n != 2 {
		t.Errorf("got %d <script elements, want 2 (the data and the page's own)", n)
	}
	// Nothing to fetch, no handler, and no markup of the program's.
	if m := regexp.MustCompile(`(?i)<[a-z][^>]*\s(src|href|on[a-z]+)=`).FindString(page); m != "" {
		t.Errorf("page has an element that fetches or runs something: %s", m)
	}
	for _, bad := range []string{"<img", "<b>x"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("the hostile name is not on the page, escaped")
	}
	if !strings.Contains(page, "default-src &#39;none&#39;; script-src &#39;sha256-") {
		t.Error("no Content-Security-Policy limiting scripts to the page's own")
	}
}

// TestReportBadInput: each unreadable file is one error saying what and
// where, with a hint.
func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	good := `{"v":1,"type":"dns","time":"2026-01-02T03:04:05Z","pid":1,"name":"a.test"}`
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.jsonl"), "no such file"},
		{write("empty.jsonl", ""), "has no events"},
		{write("blank.jsonl", "\n\n"), "has no events"},
		{write("bad.jsonl", good+"\n"+good+"\n{not json\n"), "line 3 is not an ebpfjail event"},
		{write("notype.jsonl", good+"\n"+`{"v":1}`+"\n"), "line 2 is not an ebpfjail event"},
		{write("v2.jsonl", `{"v":2,"type":"dns"}`+"\n"), "line 1 has schema version 2"},
		{write("long.jsonl", good+"\n"+strings.Repeat("x", maxLine+10)), "line 2: line longer than"},
	} {
		_, err := ReadSession(tc.path)
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) || ie.Hint == "" {
			t.Errorf("%s: got %v, want an InputError with a hint saying %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	s, err := ReadSession(write("ok.jsonl", good+"\n"+good)) // no final newline
	if err != nil || s.Events != 2 {
		t.Errorf("got %v, %+v; want 2 events", err, s)
	}
}

// TestReportTimelineInTimeOrder: requests are logged when they end, so
// the file is not in time order; the timeline is.
func TestReportTimelineInTimeOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	for _, e := range []event.Event{
		{V: 1, Type: event.TypeRequest, Time: t0.Add(time.Second), PID: 2, Method: "GET", URL: "http://late.test/"},
		{V: 1, Type: event.TypeRequest, Time: t0, PID: 2, Method: "GET", URL: "http://early.test/"},
	} {
		json.NewEncoder(&b).Encode(e)
	}
	s, err := readSession(&b, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Timeline) != 2 || s.Timeline[0].Label != "GET http://early.test/" || s.Timeline[1].MS != 1000 {
		t.Errorf("got %+v", s.Timeline)
	}
}

// FuzzReadSessionAndWriteHTML: no events file makes ebpfjail panic, and
// what it reads always renders.
func FuzzReadSessionAndWriteHTML(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"exec","time":"2026-01-02T03:04:05Z","pid":2,"ppid":1,"argv":["a"]}` + "\n" +
		`{"v":1,"type":"request","time":"2026-01-02T03:04:06Z","pid":3,"ppid":2,"url":"http://[::1]:0/","verdict":"allow"}`))
	f.Add([]byte(`{"v":1,"type":"connection","pid":1,"ppid":1,"reason":"TLS handshake failed"}` + "\n" + `{"v":1,"type":"refused"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := readSession(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if err := WriteHTML(io.Discard, s); err != nil {
			t.Fatal(err)
		}
	})
}
