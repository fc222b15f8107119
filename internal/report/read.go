package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Session is a recorded run read back from --log-json: the audit's
// aggregate of it and a bounded timeline, what `ebpfjail report` draws.
type Session struct {
	Name     string        // the file's name, for the title
	Summary  event.Summary // the process tree and per executable
	Events   int           // events read
	Start    time.Time     // first event
	End      time.Time     // last event
	Exit     *int          // the command's exit status, if the run's summary was recorded
	Timeline []Mark        // in time order, at most maxMarks
	// MarksDropped counts the events left out of the timeline.
	MarksDropped int
}

// Mark is one event on the timeline.
type Mark struct {
	MS      float64 `json:"t"` // milliseconds since the session's first event
	PID     uint32  `json:"pid"`
	Kind    string  `json:"k"` // exec, request, dns, connection, tls, refused
	Verdict string  `json:"v,omitempty"`
	Label   string  `json:"l"`
}

// maxMarks bounds the timeline: a page a browser opens quickly.
const maxMarks = 5000

// maxLine bounds one event line; --log-json writes far shorter ones.
const maxLine = 1 << 20

// InputError is an events file ebpfjail cannot read, with what to do.
type InputError struct {
	Err  error
	Hint string
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

const hintRecord = "record a session with: sudo ebpfjail --audit --log-json events.jsonl -- COMMAND"

// ReadSession reads the JSON events file at path (--log-json's output).
func ReadSession(path string) (*Session, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{fmt.Errorf("read events: %w", err), hintRecord}
	}
	defer f.Close()
	s, err := readSession(f, path)
	if err != nil {
		return nil, err
	}
	s.Name = path
	return s, nil
}

// readSession reads events, one JSON object per line, from r.
func readSession(r io.Reader, name string) (*Session, error) {
	a := NewAudit()
	s := &Session{}
	var all []event.Event
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if errors.Is(err, io.EOF) && len(b) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &InputError{fmt.Errorf("read %s line %d: %w", name, line, err), "the file must be what --log-json wrote: one JSON event per line"}
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(b, &e); err != nil || e.Type == "" {
			if err == nil {
				err = errors.New(`no "type"`)
			}
			return nil, &InputError{fmt.Errorf("%s line %d is not an ebpfjail event: %v", name, line, err),
				"the file must be what --log-json wrote: one JSON event per line"}
		}
		if e.V != event.Version {
			return nil, &InputError{fmt.Errorf("%s line %d has schema version %d; this ebpfjail reads version %d", name, line, e.V, event.Version),
				"use the ebpfjail that wrote the file"}
		}
		s.Events++
		if e.Type == event.TypeSummary && e.Summary != nil {
			exit := e.Summary.ExitStatus
			s.Exit = &exit
		}
		a.Emit(e)
		if len(all) < maxMarks {
			all = append(all, e)
		} else {
			s.MarksDropped++
		}
		if s.Start.IsZero() || e.Time.Before(s.Start) {
			s.Start = e.Time
		}
		if e.Time.After(s.End) {
			s.End = e.Time
		}
	}
	if s.Events == 0 {
		return nil, &InputError{fmt.Errorf("%s has no events", name), hintRecord}
	}
	s.Summary = a.Summary(0, s.End.Sub(s.Start))
	s.Timeline = timeline(all, s.Start)
	return s, nil
}

// readLine reads one line without its newline, refusing one over maxLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(out, []byte("\n")), err
	}
}

// timeline turns events into marks in time order (a request is logged
// when its response ends, so the file is not quite in order).
func timeline(events []event.Event, start time.Time) []Mark {
	var marks []Mark
	for _, e := range events {
		m := Mark{MS: float64(e.Time.Sub(start).Microseconds()) / 1000, PID: e.PID, Kind: e.Type, Verdict: e.Verdict}
		switch e.Type {
		case event.TypeExec:
			m.Label = "exec " + strings.Join(argvHead(e.Argv), " ")
		case event.TypeRequest:
			m.Label = e.Method + " " + e.URL
			if e.Upstream != "" {
				m.Label += " → " + e.Upstream
			}
			if e.DenyMessage != "" {
				m.Label += ": " + e.DenyMessage
			}
		case event.TypeDNS:
			m.Label = "dns " + e.QType + " " + e.Name
			if e.Server != "" {
				m.Label += " via " + e.Server
			}
		case event.TypeConnection, event.TypeRefused:
			r := refusalOf(e)
			m.Kind, m.Label = r.Kind, r.What+" "+r.Reason
			if r.Kind == event.RefusedKernel {
				m.Kind = event.TypeRefused
			}
			m.Verdict = event.Deny
		default:
			continue
		}
		m.Label = shorten(clean(m.Label), 300)
		marks = append(marks, m)
	}
	slices.SortStableFunc(marks, func(x, y Mark) int { return cmp.Compare(x.MS, y.MS) })
	return marks
}
