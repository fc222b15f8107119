package secrets

import "bytes"

// Scanner looks for any secret's placeholder in the first bytes of a
// stream no secret is ever sent on (a --tcp connection), across the
// chunks it comes in.
type Scanner struct {
	set  *Set
	tail []byte // the last bytes seen, shorter than the longest placeholder
	left int64  // bytes still to look at
	keep int
}

// NewScanner returns a Scanner of the first limit bytes; nil when there
// are no secrets.
func (s *Set) NewScanner(limit int64) *Scanner {
	if s == nil {
		return nil
	}
	keep := 0
	for _, sc := range s.secrets {
		keep = max(keep, len(sc.placeholder)-1)
	}
	return &Scanner{set: s, left: limit, keep: keep}
}

// Check looks at p, the next chunk of the stream: the name of the secret
// whose placeholder it holds or completes, or "".
func (sc *Scanner) Check(p []byte) string {
	if sc == nil || sc.left <= 0 {
		return ""
	}
	p = p[:min(int64(len(p)), sc.left)]
	sc.left -= int64(len(p))
	buf := append(sc.tail, p...)
	for _, s := range sc.set.secrets {
		if bytes.Contains(buf, s.placeholder) {
			return s.name
		}
	}
	sc.tail = append(sc.tail[:0], buf[max(0, len(buf)-sc.keep):]...)
	return ""
}
