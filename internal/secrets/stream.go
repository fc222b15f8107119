package secrets

import (
	"bytes"
	"io"
)

// pattern is one byte string a stream looks for: replaced by to (the same
// length) or, when to is nil, misuse of secret.
type pattern struct {
	from, to []byte
	secret   string
}

// Misuse is a placeholder found where its secret does not belong.
type Misuse struct {
	Secret string // the secret's name
	Where  string // "header:x-api-key", "query", "path", "host", "body", "dns", "tcp"
}

// MisuseError is a stream's error when it met a placeholder it must not
// pass on.
type MisuseError struct{ Misuse Misuse }

func (e *MisuseError) Error() string {
	return "secret " + e.Misuse.Secret + "'s placeholder in the " + e.Misuse.Where + " of a request to a host it does not belong to"
}

// replacer rewrites a byte stream, a chunk at a time. Every pattern's
// replacement has the pattern's length, so what comes out is as long as
// what went in and a Content-Length stays true. A match may be split
// across chunks: only the tail that is the start of some pattern is held
// back (so streams such as server-sent events are not delayed), and never
// more than the longest pattern.
type replacer struct {
	pats    []pattern
	first   [256]bool
	pending []byte
	where   string
}

func newReplacer(pats []pattern, where string) *replacer {
	r := &replacer{pats: pats, where: where}
	for _, p := range pats {
		r.first[p.from[0]] = true
	}
	return r
}

// feed rewrites pending+in and returns what can be passed on; with eof
// nothing is held back. A misuse pattern stops the stream: what precedes
// it is returned with the error, the pattern itself never.
func (r *replacer) feed(in []byte, eof bool) ([]byte, error) {
	buf := in
	if len(r.pending) > 0 {
		buf = append(r.pending, in...)
		r.pending = nil
	}
	for i := 0; i < len(buf); i++ {
		if !r.first[buf[i]] {
			continue
		}
		for _, p := range r.pats {
			rest := buf[i:]
			if len(rest) >= len(p.from) {
				if !bytes.Equal(rest[:len(p.from)], p.from) {
					continue
				}
				if p.to == nil {
					return buf[:i], &MisuseError{Misuse{Secret: p.secret, Where: r.where}}
				}
				copy(rest, p.to)
				i += len(p.from) - 1
				break
			}
			if !eof && bytes.HasPrefix(p.from, rest) {
				r.pending = append([]byte(nil), rest...)
				clear(rest)
				return buf[:i], nil
			}
		}
	}
	return buf, nil
}

// reader is a replacer over an io.ReadCloser.
type reader struct {
	src  io.ReadCloser
	r    *replacer
	out  []byte // rewritten, not yet returned
	buf  []byte
	err  error // the source's or a misuse, returned after out
	done bool
}

// newReader streams src through pats; where names the place in a Misuse.
func newReader(src io.ReadCloser, pats []pattern, where string) *reader {
	return &reader{src: src, r: newReplacer(pats, where), buf: make([]byte, 32<<10)}
}

func (rd *reader) Read(p []byte) (int, error) {
	for len(rd.out) == 0 {
		if rd.done {
			return 0, rd.err
		}
		n, err := rd.src.Read(rd.buf)
		eof := err != nil
		out, merr := rd.r.feed(rd.buf[:n], eof)
		rd.out = out
		if merr != nil {
			rd.err, rd.done = merr, true
		} else if eof {
			rd.err, rd.done = err, true
		}
	}
	n := copy(p, rd.out)
	rd.out = rd.out[n:]
	return n, nil
}

func (rd *reader) Close() error {
	clear(rd.r.pending)
	clear(rd.buf)
	return rd.src.Close()
}
