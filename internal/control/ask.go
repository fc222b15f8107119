package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// A person's answers to a held request.
const (
	AnswerAllow  = "allow"  // this request
	AnswerAlways = "always" // this request and every later one to its host
	AnswerDeny   = "deny"
)

// MaxPending bounds the requests held at once: a jail flooding requests
// the rule denies gets the rest denied at once, not a queue.
const MaxPending = 64

// Pending is a request held for a person's answer (--ask).
type Pending struct {
	ID      string    `json:"id"`
	Method  string    `json:"method,omitempty"`
	URL     string    `json:"url"`
	Host    string    `json:"host"`
	Port    int       `json:"port,omitempty"`
	PID     uint32    `json:"pid,omitempty"`
	Comm    string    `json:"comm,omitempty"`
	Expires time.Time `json:"expires"` // denied then without an answer
}

// held is a pending request waiting on its answer.
type held struct {
	p      Pending
	answer chan string // buffered: an answer never waits
}

// ErrNoPending means no held request has the id (answered, timed out, or
// another jail's).
var ErrNoPending = errors.New("no request is waiting with that id")

// hold registers p, gives it an id and tells the subscribers; false when
// MaxPending requests are held already.
func (h *Hub) hold(p Pending) (*held, bool) {
	var b [3]byte
	rand.Read(b[:])
	p.ID = hex.EncodeToString(b[:])
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pending) >= MaxPending {
		return nil, false
	}
	if h.pending == nil {
		h.pending = map[string]*held{}
	}
	e := &held{p: p, answer: make(chan string, 1)}
	h.pending[p.ID] = e
	for s := range h.subs {
		s.offerPending(&e.p)
	}
	return e, true
}

// release forgets a held request that was not answered.
func (h *Hub) release(id string) {
	h.mu.Lock()
	delete(h.pending, id)
	h.mu.Unlock()
}

// Answer decides the held request id: AnswerAllow, AnswerAlways or
// AnswerDeny. It returns ErrNoPending if no request waits with that id.
func (h *Hub) Answer(id, decision string) error {
	if decision != AnswerAllow && decision != AnswerAlways && decision != AnswerDeny {
		return fmt.Errorf("answer %q: want allow, always or deny", decision)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.pending[id]
	if !ok {
		return ErrNoPending
	}
	delete(h.pending, id)
	e.answer <- decision
	if decision == AnswerAlways {
		host := hostname.Fold(e.p.Host)
		if h.always == nil {
			h.always = map[string]bool{}
		}
		h.always[host] = true
		// The host's other waiting requests are answered with it.
		for id, o := range h.pending {
			if hostname.Fold(o.p.Host) == host {
				delete(h.pending, id)
				o.answer <- AnswerAlways
			}
		}
	}
	return nil
}

// allowedAlways reports whether a person answered always for host.
func (h *Hub) allowedAlways(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.always[hostname.Fold(host)]
}

// Ask returns an engine that asks rule first and, where it denies, holds
// the request for a person's answer (watch, `ebpfjail answer`) for up to
// timeout, then denies. Each verdict's reason says who decided: the rule
// ("rule", ...), a person ("person: ..."), or the clock ("timeout: ...").
// Closing it closes rule.
func Ask(rule rules.Engine, hub *Hub, timeout time.Duration) rules.Engine {
	return askEngine{rule: rule, hub: hub, timeout: timeout}
}

type askEngine struct {
	rule    rules.Engine
	hub     *Hub
	timeout time.Duration
}

func (a askEngine) Close() error { return a.rule.Close() }

func (a askEngine) Evaluate(ctx context.Context, r *rules.Request) rules.Verdict {
	v := a.rule.Evaluate(ctx, r)
	if v.Allow {
		return v
	}
	if a.hub.allowedAlways(r.Host) {
		return rules.Verdict{Allow: true, Reason: "person: always " + r.Host}
	}
	e, ok := a.hub.hold(Pending{Method: r.Method, URL: r.URL, Host: r.Host, Port: r.Port,
		PID: r.Proc.PID, Comm: r.Proc.Comm, Expires: time.Now().Add(a.timeout).UTC()})
	if !ok {
		v.Reason = fmt.Sprintf("%s (not asked: %d requests wait for an answer already)", v.Reason, MaxPending)
		return v
	}
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	select {
	case d := <-e.answer:
		switch d {
		case AnswerAllow:
			return rules.Verdict{Allow: true, Reason: "person: allow once"}
		case AnswerAlways:
			return rules.Verdict{Allow: true, Reason: "person: always " + r.Host}
		}
		return rules.Verdict{DenyMessage: "denied by a person", Reason: "person: deny"}
	case <-t.C:
		a.hub.release(e.p.ID)
		return rules.Verdict{DenyMessage: "no answer", Reason: "timeout: no answer within " + a.timeout.String()}
	case <-ctx.Done():
		a.hub.release(e.p.ID)
		return rules.Verdict{Reason: "ask: the request ended before an answer"}
	}
}
