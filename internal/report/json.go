package report

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// JSON writes --log-json: every event as one JSON object on one line (JSON
// Lines, which Vector and Fluent Bit ingest as is). The fields are
// pkg/event's; see its SCHEMA.md.
type JSON struct {
	lw lineWriter
}

// NewJSON returns a JSON sink writing to w (a file opened O_APPEND, or
// stdout for "-").
func NewJSON(w io.Writer) *JSON {
	return &JSON{lw: lineWriter{w: w}}
}

// Emit writes e as one line, with V and Time filled in if the producer
// left them zero (see [Stamp]).
//
// HTML escaping is off: a URL's "&" stays "&" rather than "\u0026", so
// the log can be grepped for the query strings it contains. The output is
// the same JSON either way; control characters, U+2028 and U+2029 are
// still escaped, so an event is always exactly one line.
func (j *JSON) Emit(e event.Event) {
	if j == nil {
		return
	}
	e = Stamp(e)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// A NaN duration or a time past year 9999 cannot be encoded:
		// keep the error for Err rather than write a line that is not
		// the event.
		j.lw.setErr(err)
		return
	}
	j.lw.write(buf.Bytes()) // Encode ends the line with '\n'
}

// Err returns the first error writing or encoding an event, if any.
func (j *JSON) Err() error {
	if j == nil {
		return nil
	}
	return j.lw.firstErr()
}

// OnError has f called once, with the first error writing (or encoding)
// a line, when it happens: a log on a full disk is worth a word at once,
// not one per request. f runs with the log's lock held and must not emit.
func (j *JSON) OnError(f func(error)) { j.lw.setOnErr(f) }

// Lost returns how many lines could not be written.
func (j *JSON) Lost() int {
	if j == nil {
		return 0
	}
	return j.lw.lostLines()
}
