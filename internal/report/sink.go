package report

import (
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Sink consumes events. Emit must be safe for concurrent use and must not
// keep or modify the event's slices and pointers (Argv, Summary): one event
// goes to every sink of a [Fanout].
type Sink interface {
	Emit(event.Event)
}

// SinkFunc adapts a function to [Sink] (a channel, a test recorder).
type SinkFunc func(event.Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e event.Event) { f(e) }

// Fanout returns a Sink that stamps each event (see [Stamp]) and hands it
// to every sink in order. Nil sinks, including typed nil pointers, are
// skipped, so optional sinks need no if statements at the call site.
// Stamping once here gives every log the same time for the same event.
func Fanout(sinks ...Sink) Sink {
	var live fanout
	for _, s := range sinks {
		if s == nil {
			continue
		}
		if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && v.IsNil() {
			continue
		}
		live = append(live, s)
	}
	return live
}

type fanout []Sink

func (f fanout) Emit(e event.Event) {
	e = Stamp(e)
	for _, s := range f {
		s.Emit(e)
	}
}

// Stamp fills what a producer may leave out: V (the current
// [event.Version]) and Time (now). Time is made UTC and cut to the
// millisecond, the schema's precision, so the request log and the JSON
// log of one event agree to the millisecond.
func Stamp(e event.Event) event.Event {
	if e.V == 0 {
		e.V = event.Version
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	return e
}

// lineWriter serialises whole lines to one writer and keeps the first
// write error, how many lines were lost, and tells onErr (once) when the
// first one is.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	err   error
	lost  int
	onErr func(error)
}

// write writes line with a single Write call under the lock.
func (l *lineWriter) write(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		l.failed(err)
	}
}

func (l *lineWriter) setErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed(err)
}

// failed records a lost line; l.mu is held.
func (l *lineWriter) failed(err error) {
	l.lost++
	if l.err != nil {
		return
	}
	l.err = err
	if l.onErr != nil {
		l.onErr(err)
	}
}

func (l *lineWriter) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *lineWriter) lostLines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *lineWriter) setOnErr(f func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onErr = f
}
