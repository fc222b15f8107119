package control

import (
	"errors"
	"io"
)

var errEOF = io.EOF

// limited reads at most n bytes in all, then EOF: a request line is short.
type limited struct {
	r io.Reader
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

var errTooLong = errors.New("request too long")
