package control

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Keys answer the oldest request still waiting, in an interactive watch.
var keyAnswers = map[byte]string{'y': AnswerAllow, 'a': AnswerAlways, 'n': AnswerDeny}

// KeyHelp is what an interactive watch shows with each held request.
const KeyHelp = "[y] allow once  [a] always this host  [n] deny"

// asking is the queue of held requests an interactive watch answers by
// key, oldest first.
type asking struct {
	mu       sync.Mutex
	queue    []heldIn
	stateDir string
}

// heldIn is a held request and its jail.
type heldIn struct {
	jail string
	id   string
}

func (q *asking) add(jail, id string) {
	q.mu.Lock()
	q.queue = append(q.queue, heldIn{jail, id})
	q.mu.Unlock()
}

// answer gives decision to the oldest request that still waits; those
// that no longer do (answered elsewhere, timed out) are skipped. It
// returns the request's id, or "" if none waited.
func (q *asking) answer(ctx context.Context, decision string) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) > 0 {
		h := q.queue[0]
		q.queue = q.queue[1:]
		c, err := DialRequest(ctx, SocketPath(q.stateDir, h.jail), Request{Op: OpAnswer, ID: h.id, Answer: decision})
		if err != nil {
			continue // the jail ended
		}
		m, err := c.Next()
		c.Close()
		if err == nil && m.Answered {
			return h.id, nil
		}
	}
	return "", nil
}

// readKeys answers held requests by the keys read from in until ctx is
// done or in ends, saying each answer on notes.
func (q *asking) readKeys(ctx context.Context, in io.Reader, notes io.Writer) {
	var b [1]byte
	for ctx.Err() == nil {
		if n, err := in.Read(b[:]); err != nil || n == 0 {
			return
		}
		decision, ok := keyAnswers[b[0]]
		if !ok {
			continue
		}
		id, err := q.answer(ctx, decision)
		switch {
		case err != nil:
			fmt.Fprintf(notes, "ebpfjail: answer: %v\n", err)
		case id == "":
			fmt.Fprintf(notes, "ebpfjail: no request waits for an answer\n")
		default:
			fmt.Fprintf(notes, "ebpfjail: answered %s: %s\n", id, decision)
		}
	}
}
