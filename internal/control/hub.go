package control

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// BufferSize is how many events a subscriber's buffer holds before the
// next ones are dropped (and counted).
const BufferSize = 1024

// Backlog is how many of the latest events a new subscriber gets first,
// as tail -f shows the last lines: a watcher that finds the jail a moment
// after it started (it looks for new jails periodically) misses nothing
// of its first moments.
const Backlog = 256

// Hub is a jail's side of the channel without the socket: it counts the
// jail's events and hands them to the subscribers. Emit (a report.Sink)
// never blocks.
type Hub struct {
	allowed, denied, refused, dns, execs atomic.Int64
	accepted, refusedPeers               atomic.Int64

	mu    sync.Mutex
	info  Status // ID, Command, User, UID, PID, Supervisor, Started
	subs  map[*subscriber]struct{}
	ended *End
	last  []event.Event // the latest events, at most Backlog, a ring
	next  int           // where the next one goes in last

	pending map[string]*held // --ask: requests waiting for a person
	always  map[string]bool  // hosts a person allowed for the rest of the run
}

// NewHub returns the hub of a jail running command as user.
func NewHub(command []string, user string, uid uint32, supervisor int) *Hub {
	return &Hub{
		info: Status{Command: command, User: user, UID: uid, Supervisor: supervisor, Started: time.Now().UTC()},
		subs: map[*subscriber]struct{}{},
	}
}

// SetJail records the jail's id.
func (h *Hub) SetJail(id string) {
	h.mu.Lock()
	h.info.ID = id
	h.mu.Unlock()
}

// SetPID records the command's pid, once it started.
func (h *Hub) SetPID(pid int) {
	h.mu.Lock()
	h.info.PID = pid
	h.mu.Unlock()
}

// Status is the jail's status now.
func (h *Hub) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status()
}

// status is Status with h.mu held.
func (h *Hub) status() Status {
	s := h.info
	s.Command = append([]string(nil), s.Command...)
	s.Counts = Counts{Allowed: h.allowed.Load(), Denied: h.denied.Load(), Refused: h.refused.Load(), DNS: h.dns.Load(), Execs: h.execs.Load()}
	s.Watchers = len(h.subs)
	s.Pending = len(h.pending)
	s.Peers = Peers{Accepted: h.accepted.Load(), Refused: h.refusedPeers.Load()}
	return s
}

// Emit counts e and hands it to every subscriber that has room.
func (h *Hub) Emit(e event.Event) {
	h.count(e)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.last) < Backlog {
		h.last = append(h.last, e)
	} else {
		h.last[h.next] = e // a ring: no copying on the events' path
	}
	h.next = (h.next + 1) % Backlog
	for s := range h.subs {
		s.offer(e)
	}
}

func (h *Hub) count(e event.Event) {
	switch e.Type {
	case event.TypeRequest:
		if e.Verdict == event.Allow {
			h.allowed.Add(1)
		} else {
			h.denied.Add(1)
		}
	case event.TypeConnection, event.TypeRefused:
		if e.Verdict != event.Allow {
			h.refused.Add(1)
		}
	case event.TypeDNS:
		h.dns.Add(1)
	case event.TypeExec:
		h.execs.Add(1)
	}
}

// End tells every subscriber, after its buffered events, that the jail is
// gone; exitStatus is nil if the command never ran. Later subscribers get
// the end at once. Only the first call counts.
func (h *Hub) End(exitStatus *int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended != nil {
		return
	}
	h.ended = &End{ExitStatus: exitStatus, Status: h.status()}
	for s := range h.subs {
		s.end(h.ended)
	}
}

// Subscribe adds a subscriber; it must be removed with Unsubscribe. Its
// first message is the status at this moment, then the backlog.
func (h *Hub) Subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := newSubscriber()
	h.subs[s] = struct{}{}
	s.first = h.status()
	for i := range h.last {
		// Oldest first: once the ring is full, the oldest is at next.
		s.offer(h.last[(h.next+i)%len(h.last)])
	}
	for _, e := range h.pending {
		s.offerPending(&e.p)
	}
	if h.ended != nil {
		s.end(h.ended)
	}
	return s
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// peer counts a connection to the control socket.
func (h *Hub) peer(accepted bool) {
	if accepted {
		h.accepted.Add(1)
	} else {
		h.refusedPeers.Add(1)
	}
}

// subscriber is one watcher's bounded buffer. Events that find it full
// are dropped and counted; the count travels with the next event that
// fits (or with the end), so the watcher learns where the gap was.
type subscriber struct {
	first Status
	mu    sync.Mutex
	queue chan item
	lost  int64 // dropped since the last item queued
	ended bool
	done  chan struct{} // closed after the end item is queued
}

// item is one queued message: an event or the end, after dropped others.
type item struct {
	dropped int64
	event   *event.Event
	end     *End
	pending *Pending
}

func newSubscriber() *subscriber {
	return &subscriber{queue: make(chan item, BufferSize), done: make(chan struct{})}
}

// offer queues e if there is room, else counts it lost. It never blocks.
func (s *subscriber) offer(e event.Event) { s.put(item{event: &e}) }

// offerPending queues a held request, like an event.
func (s *subscriber) offerPending(p *Pending) { s.put(item{pending: p}) }

// put queues it, with the count of items lost before it, if there is
// room; else it counts it lost.
func (s *subscriber) put(it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	it.dropped = s.lost
	select {
	case s.queue <- it:
		s.lost = 0
	default:
		s.lost++
	}
}

// end queues the end; one slot is kept for it by dropping the newest
// event if the buffer is full.
func (s *subscriber) end(e *End) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	for {
		select {
		case s.queue <- item{dropped: s.lost, end: e}:
			close(s.done)
			return
		default:
			// Full: make room by taking the oldest queued event, which
			// is then counted as dropped.
			select {
			case it := <-s.queue:
				s.lost += it.dropped + 1
			default:
			}
		}
	}
}

// next returns the subscriber's next queued item, waiting until one is
// queued or stop is closed.
func (s *subscriber) next(stop <-chan struct{}) (item, bool) {
	select {
	case it := <-s.queue:
		return it, true
	case <-stop:
		return item{}, false
	}
}
