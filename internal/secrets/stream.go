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
	Where  string // "header:x-api-key", "header-name", "query", "path", "host", "body", "dns", "tcp"
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
	longest int
}

func newReplacer(pats []pattern, where string) *replacer {
	r := &replacer{pats: pats, where: where}
	for _, p := range pats {
		r.first[p.from[0]] = true
		r.longest = max(r.longest, len(p.from))
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
	pos := 0
	for {
		at, p := r.next(buf, pos)
		if p == nil {
			break
		}
		if p.to == nil {
			return buf[:at], &MisuseError{Misuse{Secret: p.secret, Where: r.where}}
		}
		copy(buf[at:], p.to)
		pos = at + len(p.from)
	}
	if eof {
		return buf, nil
	}
	hold := r.partial(buf, pos)
	if hold < len(buf) {
		r.pending = append([]byte(nil), buf[hold:]...)
		clear(buf[hold:])
	}
	return buf[:hold], nil
}

// next finds the earliest whole match in buf from pos on (bytes.Index is
// vectorised: a body without placeholders costs a few passes).
func (r *replacer) next(buf []byte, pos int) (int, *pattern) {
	at, found := -1, (*pattern)(nil)
	for i := range r.pats {
		p := &r.pats[i]
		end := len(buf)
		if at >= 0 {
			end = min(len(buf), at+len(p.from)) // only an earlier match matters
		}
		if j := bytes.Index(buf[pos:end], p.from); j >= 0 && (at < 0 || pos+j < at) {
			at, found = pos+j, p
		}
	}
	return at, found
}

// partial returns where the tail of buf that may be the start of a
// pattern begins (len(buf) when none): that much is held back.
func (r *replacer) partial(buf []byte, pos int) int {
	for j := max(pos, len(buf)-r.longest+1); j < len(buf); j++ {
		if !r.first[buf[j]] {
			continue
		}
		for _, p := range r.pats {
			if bytes.HasPrefix(p.from, buf[j:]) {
				return j
			}
		}
	}
	return len(buf)
}

// reader is a replacer over an io.ReadCloser.
type reader struct {
	src  io.ReadCloser
	r    *replacer
	out  []byte // rewritten, not yet returned
	buf  []byte
	err  error // the source's or a misuse, returned after out
	done bool
	// atEOF, if set, runs once the source has ended.
	atEOF func()
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
			if rd.atEOF != nil {
				rd.atEOF()
			}
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
