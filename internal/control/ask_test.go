package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

type denyAll struct{}

func (denyAll) Evaluate(context.Context, *rules.Request) rules.Verdict {
	return rules.Verdict{Reason: "rule"}
}
func (denyAll) Close() error { return nil }

// ask evaluates r on e in the background and returns the held request's
// id (from a subscriber) and where the verdict will arrive.
func ask(t *testing.T, h *Hub, e rules.Engine, host string) (string, <-chan rules.Verdict) {
	t.Helper()
	s := h.Subscribe()
	defer h.Unsubscribe(s)
	out := make(chan rules.Verdict, 1)
	go func() {
		out <- e.Evaluate(context.Background(), &rules.Request{Host: host, URL: "http://" + host + "/"})
	}()
	stop := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(stop) })
	for {
		it, ok := s.next(stop)
		if !ok {
			t.Fatal("no pending request")
		}
		if it.pending != nil {
			return it.pending.ID, out
		}
	}
}

func TestAskHoldsDeniedRequestsForAnAnswer(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	e := Ask(denyAll{}, h, time.Minute)
	id, v := ask(t, h, e, "a.test")
	if err := h.Answer(id, AnswerAllow); err != nil {
		t.Fatal(err)
	}
	if got := <-v; !got.Allow || got.Reason != "person: allow once" {
		t.Errorf("allow: %+v", got)
	}
	if err := h.Answer(id, AnswerAllow); !errors.Is(err, ErrNoPending) {
		t.Errorf("a second answer: %v, want ErrNoPending", err)
	}
	id, v = ask(t, h, e, "b.test")
	h.Answer(id, AnswerAlways)
	if got := <-v; !got.Allow {
		t.Errorf("always: %+v", got)
	}
	if got := e.Evaluate(context.Background(), &rules.Request{Host: "B.test"}); !got.Allow || !strings.HasPrefix(got.Reason, "person: always") {
		t.Errorf("after always, the host is not asked again: %+v", got)
	}
	id, v = ask(t, h, e, "c.test")
	h.Answer(id, AnswerDeny)
	if got := <-v; got.Allow || got.Reason != "person: deny" {
		t.Errorf("deny: %+v", got)
	}
}

func TestAskDeniesAfterTheTimeoutAndPastTheCap(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	e := Ask(denyAll{}, h, 50*time.Millisecond)
	if got := e.Evaluate(context.Background(), &rules.Request{Host: "x.test"}); got.Allow || !strings.HasPrefix(got.Reason, "timeout:") {
		t.Errorf("no answer: %+v", got)
	}
	slow := Ask(denyAll{}, h, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < MaxPending; i++ {
		go slow.Evaluate(ctx, &rules.Request{Host: "x.test"})
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := len(h.pending)
		h.mu.Unlock()
		if n == MaxPending {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	got := slow.Evaluate(ctx, &rules.Request{Host: "y.test"})
	if got.Allow || !strings.Contains(got.Reason, "not asked") || time.Since(start) > time.Second {
		t.Errorf("past the cap: %+v after %v, want an immediate deny", got, time.Since(start))
	}
}

func TestAlwaysAnswersTheHostsOtherWaitingRequests(t *testing.T) {
	h := NewHub(nil, "", 0, 1)
	e := Ask(denyAll{}, h, time.Minute)
	out := make(chan rules.Verdict, 3)
	for _, host := range []string{"a.test", "A.test", "other.test"} {
		go func() { out <- e.Evaluate(context.Background(), &rules.Request{Host: host}) }()
	}
	var id string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		n := len(h.pending)
		for k, p := range h.pending {
			if p.p.Host == "a.test" {
				id = k
			}
		}
		h.mu.Unlock()
		if n == 3 {
			break
		}
	}
	if err := h.Answer(id, AnswerAlways); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if v := <-out; !v.Allow {
			t.Errorf("a waiting request to the host: %+v, want allowed", v)
		}
	}
	if st := h.Status(); st.Pending != 1 {
		t.Errorf("%d pending, want other.test's alone", st.Pending)
	}
}
