package control

import (
	"testing"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func req(verdict string) event.Event {
	return event.Event{Type: event.TypeRequest, Verdict: verdict, URL: "http://x.test/"}
}

func TestHubCountsEvents(t *testing.T) {
	h := NewHub([]string{"curl", "x"}, "nobody", 65534, 1)
	for _, e := range []event.Event{req(event.Allow), req(event.Deny), req(event.Deny),
		{Type: event.TypeConnection, Verdict: event.Deny}, {Type: event.TypeDNS}, {Type: event.TypeExec}} {
		h.Emit(e)
	}
	got := h.Status().Counts
	want := Counts{Allowed: 1, Denied: 2, Refused: 1, DNS: 1, Execs: 1}
	if got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

// A subscriber that does not read never blocks Emit: past its buffer,
// events are dropped and the count comes with the next one that fits.
func TestSlowSubscriberDropsAndCountsWithoutBlocking(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	s := h.Subscribe()
	defer h.Unsubscribe(s)
	for i := 0; i < BufferSize+10; i++ {
		h.Emit(req(event.Allow)) // would hang here if Emit blocked
	}
	stop := make(chan struct{})
	for i := 0; i < BufferSize; i++ {
		it, ok := s.next(stop)
		if !ok || it.event == nil || it.dropped != 0 {
			t.Fatalf("item %d: %+v, want a buffered event", i, it)
		}
	}
	h.Emit(req(event.Deny))
	it, _ := s.next(stop)
	if it.dropped != 10 || it.event == nil || it.event.Verdict != event.Deny {
		t.Errorf("after the gap: %+v, want the next event with 10 dropped", it)
	}
}

func TestEndReachesAFullSubscriberAndLaterOnes(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	s := h.Subscribe()
	for i := 0; i < BufferSize; i++ {
		h.Emit(req(event.Allow))
	}
	status := 3
	h.End(&status)
	stop := make(chan struct{})
	var last item
	for n := 0; n < BufferSize; n++ {
		last, _ = s.next(stop)
	}
	if last.end == nil || *last.end.ExitStatus != 3 || last.dropped != 1 {
		t.Errorf("last item %+v, want the end with one event dropped for it", last)
	}
	late := h.Subscribe()
	var it item
	for it.end == nil {
		var ok bool
		if it, ok = late.next(stop); !ok {
			t.Fatal("no end for a late subscriber")
		}
	}
}

func TestNewSubscriberGetsTheBacklog(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	for i := 0; i < Backlog+5; i++ {
		h.Emit(event.Event{Type: event.TypeDNS, Port: i})
	}
	s := h.Subscribe()
	it, _ := s.next(make(chan struct{}))
	if it.event == nil || it.event.Port != 5 || len(s.queue) != Backlog-1 {
		t.Errorf("first item %+v with %d queued, want the event 5 and %d more", it, len(s.queue), Backlog-1)
	}
}

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Args
		err  bool
	}{
		{[]string{"watch"}, Args{Word: "watch"}, false},
		{[]string{"watch", "--json", "12-ab"}, Args{Word: "watch", JSON: true, Jail: "12-ab"}, false},
		{[]string{"watch", "a", "b"}, Args{}, true},
		{[]string{"watch", "--color"}, Args{}, true},
		{[]string{"ps"}, Args{Word: "ps"}, false},
		{[]string{"ps", "x"}, Args{}, true},
		{[]string{"answer", "a1b2c3", "always"}, Args{Word: "answer", ID: "a1b2c3", Answer: "always"}, false},
		{[]string{"answer", "a1b2c3", "maybe"}, Args{}, true},
	} {
		var a Args
		err := a.Parse(c.args)
		if (err != nil) != c.err || err == nil && a != c.want {
			t.Errorf("Parse(%q) = %+v, %v", c.args, a, err)
		}
	}
}
