package supervisor

import (
	"log/slog"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// watchRefused reports what the kernel refuses in the jail (UDP other than
// DNS, raw and other sockets, unix side doors, inbound packets) as refused
// events. The refusals do not depend on it: without the buffer the jail
// refuses the same, silently. With sockets, every refused socket() is
// reported, whoever refused it (at a cost to every syscall of the host
// while the jail runs: see bpf.WatchRefused).
func watchRefused(objs *bpf.Objects, sockets bool, emit func(event.Event), log *slog.Logger) (stop func()) {
	w, err := objs.WatchRefused(sockets)
	if err != nil && sockets {
		log.Warn("refused sockets: only those the jail's hook refuses are reported", "err", err)
		w, err = objs.WatchRefused(false)
	}
	if err != nil {
		log.Warn("no refused events", "err", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := w.Next()
			if err != nil {
				return // closed, after the buffered events
			}
			emit(refusedEvent(r))
		}
	}()
	return func() {
		w.Close()
		<-done
	}
}

func refusedEvent(r bpf.Refused) event.Event {
	e := event.Event{
		V: event.Version, Type: event.TypeRefused, Time: time.Now().UTC(),
		Verdict: event.Deny, Reason: r.Reason,
		PID: r.PID, PPID: r.PPID, UID: r.UID, Comm: r.Comm, Exe: r.Exe,
		Op: r.Op, Family: r.Family, SockType: r.SockType, Proto: r.Proto, Dst: r.Dst,
	}
	if r.Count > 1 {
		e.Count = r.Count
	}
	return e
}
