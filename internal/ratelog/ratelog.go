package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Limiter counts similar lines per key: at most burst per interval pass;
// when an interval in which some were held back ends, its say function
// is called once with how many.
type Limiter struct {
	burst    int
	interval time.Duration
	mu       sync.Mutex
	keys     map[string]*run
}

// run is one key's current interval.
type run struct {
	start    time.Time
	passed   int
	held     int
	say      func(held int) // from the last line held back
	flushing bool
}

// NewLimiter lets burst similar lines per interval pass.
func NewLimiter(burst int, interval time.Duration) *Limiter {
	return &Limiter{burst: burst, interval: interval, keys: map[string]*run{}}
}

// Key is what makes two lines similar: the text with each run of digits
// (addresses, ports, process ids, durations) set aside.
func Key(text string) string {
	var b strings.Builder
	digits := false
	for _, c := range text {
		if '0' <= c && c <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(c)
	}
	return b.String()
}

// Admit counts a line of key and reports whether it may be written. When
// it may not, say is kept to write the summary (called with the limiter's
// lock held, so summaries stay in order with the lines around them).
func (l *Limiter) Admit(key string, say func(held int)) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ru := l.keys[key]
	// A run with lines held back ends with its timer (flush).
	if ru == nil || now.Sub(ru.start) >= l.interval && !ru.flushing {
		if len(l.keys) >= maxKeys {
			l.sweep(now)
		}
		ru = &run{start: now}
		l.keys[key] = ru
	}
	if ru.passed < l.burst {
		ru.passed++
		return true
	}
	ru.held++
	ru.say = say
	if !ru.flushing {
		ru.flushing = true
		time.AfterFunc(time.Until(ru.start.Add(l.interval)), func() { l.flush(key, ru) })
	}
	return false
}

// maxKeys is how many runs are remembered before the ended ones are
// forgotten (lines that differ in words, not digits, are each a key).
const maxKeys = 1024

// sweep forgets the runs whose interval ended and that held nothing back.
func (l *Limiter) sweep(now time.Time) {
	for k, ru := range l.keys {
		if !ru.flushing && now.Sub(ru.start) >= l.interval {
			delete(l.keys, k)
		}
	}
}

// flush ends ru's interval with its summary.
func (l *Limiter) flush(key string, ru *run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys[key] == ru {
		delete(l.keys, key)
	}
	if ru.held > 0 {
		ru.say(ru.held)
	}
}

// Summary is the text that ends a run: the last line held back, and how
// many were.
func (l *Limiter) Summary(text string, held int) string {
	return fmt.Sprintf("%s (%d more like this in %v not shown)", text, held, l.interval)
}

// handler passes at most burst similar records per interval to the next
// handler, then one record saying how many were held back.
type handler struct {
	next slog.Handler
	lim  *Limiter
}

// New wraps next: at most burst similar records (same level, same
// message but for digits; attributes are not compared) per interval go
// through.
func New(next slog.Handler, burst int, interval time.Duration) slog.Handler {
	return &handler{next: next, lim: NewLimiter(burst, interval)}
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), lim: h.lim}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), lim: h.lim}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	say := func(held int) {
		h.next.Handle(context.Background(), slog.NewRecord(time.Now(), r.Level, h.lim.Summary(r.Message, held), 0))
	}
	if !h.lim.Admit(r.Level.String()+" "+Key(r.Message), say) {
		return nil
	}
	return h.next.Handle(ctx, r)
}
