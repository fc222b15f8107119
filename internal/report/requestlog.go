package report

import (
	"io"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// RequestLog writes httpjail's --request-log format, one line per rule
// evaluation (a request event):
//
//	2026-01-02T03:04:05.678Z + GET https://host/path
//
// The time is the event's, in UTC with milliseconds; "+" is an allowed
// request and "-" any other (a request event without a verdict is
// reported as denied, since the jail fails closed). Every line matches
//
//	^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [+-] [A-Z]+ \S+$
//
// whatever the jailed process sent: the method is reduced to upper-case
// letters, and whitespace, control and non-ASCII bytes of the URL are
// percent-escaped.
// Lines are in the order events are emitted; an allowed request is emitted
// when its response is done, so a long download's line can follow lines
// stamped later.
type RequestLog struct {
	lw lineWriter
}

// NewRequestLog returns a RequestLog writing to w. For --request-log, w is
// an *os.File opened O_APPEND|O_CREATE|O_WRONLY: each line is one write,
// so the file never holds half a line, even shared with other writers.
func NewRequestLog(w io.Writer) *RequestLog {
	return &RequestLog{lw: lineWriter{w: w}}
}

// Emit writes a line for a request event and ignores the other types.
func (l *RequestLog) Emit(e event.Event) {
	if l == nil || e.Type != event.TypeRequest {
		return
	}
	e = Stamp(e)
	b := make([]byte, 0, 48+len(e.URL))
	b = e.Time.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	if e.Verdict == event.Allow {
		b = append(b, " + "...)
	} else {
		b = append(b, " - "...)
	}
	b = append(b, logMethod(e.Method)...)
	b = append(b, ' ')
	b = append(b, logURL(e.URL)...)
	b = append(b, '\n')
	l.lw.write(b)
}

// Err returns the first error writing the log, if any.
func (l *RequestLog) Err() error {
	if l == nil {
		return nil
	}
	return l.lw.firstErr()
}

// logMethod returns the method as one [A-Z]+ word: every standard method
// already is one; a lower-case extension method is upper-cased and other
// bytes (the "-" of VERSION-CONTROL) are dropped. The JSON log keeps the
// method exactly.
func logMethod(m string) string {
	plain := m != ""
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return m
	}
	b := make([]byte, 0, len(m))
	for i := 0; i < len(m); i++ {
		switch c := m[i]; {
		case c >= 'A' && c <= 'Z':
			b = append(b, c)
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		}
	}
	if len(b) == 0 {
		return "UNKNOWN"
	}
	return string(b)
}

// logURL returns the URL as one field: spaces, control bytes and non-ASCII
// bytes are percent-escaped (a space as %20), so a URL cannot split its
// line or forge another one with a newline. An empty URL is "-".
func logURL(u string) string {
	if u == "" {
		return "-"
	}
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c > ' ' && c < 0x7f {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = make([]byte, i, len(u)+16)
			copy(b, u[:i])
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	if b == nil {
		return u
	}
	return string(b)
}

// OnError has f called once, with the first error writing (or encoding)
// a line, when it happens: a log on a full disk is worth a word at once,
// not one per request. f runs with the log's lock held and must not emit.
func (l *RequestLog) OnError(f func(error)) { l.lw.setOnErr(f) }

// Lost returns how many lines could not be written.
func (l *RequestLog) Lost() int {
	if l == nil {
		return 0
	}
	return l.lw.lostLines()
}
