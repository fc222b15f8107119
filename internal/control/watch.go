package control

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// PollInterval is how often Watch looks for jails that started.
const PollInterval = 250 * time.Millisecond

// Watcher is what Watch tells: events, and notes about jails coming and
// going. Watch calls its methods one at a time.
type Watcher interface {
	Attached(s Status)
	Event(id string, e event.Event)
	Dropped(id string, n int64)
	Pending(id string, p Pending) // a request held for an answer (--ask)
	Ended(id string, end *End)    // end is nil when the connection was lost
	Idle()                        // no jail is attached (once each time it happens)
}

// Watch follows the jails in stateDir whose id starts with prefix and,
// unless only is set, every matching jail that starts later, until ctx is
// done. With only set it returns when the jails it found at first have
// all ended, and false at once if there were none.
func Watch(ctx context.Context, stateDir, prefix string, only bool, w Watcher) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	call := func(f func()) { mu.Lock(); defer mu.Unlock(); f() }
	seen := map[string]bool{} // a jail's id is never reused: attach once
	ended := make(chan struct{})
	live, idle, scanned := 0, false, false
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		if !only || !scanned {
			n := attachNew(ctx, stateDir, prefix, seen, w, call, ended)
			live += n
			if n > 0 {
				idle = false
			}
		}
		if only && live == 0 {
			return scanned
		}
		scanned = true
		if live == 0 && !idle {
			idle = true
			call(w.Idle)
		}
		select {
		case <-ctx.Done():
			return true
		case <-ended:
			live--
		case <-tick.C:
		}
	}
}

// attachNew subscribes to the matching jails not seen yet and returns how
// many it attached to; each sends on ended when it is gone.
func attachNew(ctx context.Context, stateDir, prefix string, seen map[string]bool, w Watcher, call func(func()), ended chan<- struct{}) int {
	ids, _ := Jails(stateDir)
	n := 0
	for _, id := range ids {
		if seen[id] || !strings.HasPrefix(id, prefix) {
			continue
		}
		c, st, err := subscribe(ctx, SocketPath(stateDir, id))
		if err != nil {
			continue // a dead supervisor's socket, or one going away: try again later
		}
		seen[id] = true
		n++
		call(func() { w.Attached(st) })
		go func() {
			follow(c, id, w, call)
			select {
			case ended <- struct{}{}:
			case <-ctx.Done():
			}
		}()
	}
	return n
}

// subscribe connects and reads the first message, the status.
func subscribe(ctx context.Context, path string) (*Conn, Status, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := Dial(dctx, path, OpSubscribe)
	if err != nil {
		return nil, Status{}, err
	}
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	m, err := c.Next()
	c.c.SetReadDeadline(time.Time{})
	if err == nil && m.Status == nil {
		err = errors.New("read from jail: no status")
	}
	if err != nil {
		c.Close()
		return nil, Status{}, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, *m.Status, nil
}

// follow passes one jail's messages to w until the end.
func follow(c *Conn, id string, w Watcher, call func(func())) {
	defer c.Close()
	for {
		m, err := c.Next()
		if err != nil {
			call(func() { w.Ended(id, nil) })
			return
		}
		switch {
		case m.Dropped > 0:
			call(func() { w.Dropped(id, m.Dropped) })
		case m.End != nil:
			call(func() { w.Ended(id, m.End) })
			return
		case m.Event != nil:
			call(func() { w.Event(id, *m.Event) })
		case m.Pending != nil:
			call(func() { w.Pending(id, *m.Pending) })
		}
	}
}
