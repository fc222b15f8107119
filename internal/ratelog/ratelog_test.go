package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestRepeatsArePassedThenSummarised(t *testing.T) {
	var out syncBuffer
	text := slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(New(text, 3, 200*time.Millisecond)).With("component", "proxy")
	for i := range 1000 {
		// Digits differ from line to line; the lines are still alike.
		log.Warn("http2: stream error from 127.0.0.1:"+string(rune('0'+i%10))+"4321", "conn", i)
	}
	log.Warn("something else")
	time.Sleep(400 * time.Millisecond)
	got := out.lines()
	want := []string{
		`level=WARN msg="http2: stream error from 127.0.0.1:04321" component=proxy conn=0`,
		`level=WARN msg="http2: stream error from 127.0.0.1:14321" component=proxy conn=1`,
		`level=WARN msg="http2: stream error from 127.0.0.1:24321" component=proxy conn=2`,
		`level=WARN msg="something else" component=proxy`,
		`level=WARN msg="http2: stream error from 127.0.0.1:94321 (997 more like this in 200ms not shown)" component=proxy`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The next interval passes a burst again.
	log.Warn("http2: stream error from 127.0.0.1:1")
	if got := out.lines(); len(got) != len(want)+1 {
		t.Errorf("after the interval: got %d lines, want %d:\n%s", len(got), len(want)+1, strings.Join(got, "\n"))
	}
}

func TestDistinctMessagesAreForgotten(t *testing.T) {
	var out syncBuffer
	h := New(slog.NewTextHandler(&out, nil), 1, time.Millisecond)
	log := slog.New(h)
	for i := range 5000 {
		log.Info("host " + strings.Repeat("x", i%3000))
		if i == 2500 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	s := h.(*handler).lim
	s.mu.Lock()
	n := len(s.keys)
	s.mu.Unlock()
	if n > maxKeys+1 {
		t.Errorf("%d keys remembered, want at most %d", n, maxKeys+1)
	}
}
