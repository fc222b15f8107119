package secrets

import "strings"

// foldWindow is how many consecutive letters and digits of a placeholder
// make a DNS name misuse: a lookup folds case, caps labels at 63 bytes
// and names at 253, so an exfiltration splits the placeholder across
// labels or lookups; any 20 of its random characters in a row still give
// it away (and never occur by chance).
const foldWindow = 20

// fold keeps the letters and digits of s, lower-cased: what survives a
// trip through DNS labels.
func fold(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		}
	}
	return b.String()
}

// inFolded reports whether name holds foldWindow consecutive letters and
// digits of sc's placeholder, case and punctuation ignored (its whole
// folded form when that is shorter).
func (sc *secret) inFolded(name string) bool {
	ph := sc.folded
	w := min(foldWindow, len(ph))
	if len(name) < w {
		return false // too short to hold w letters and digits
	}
	n := fold(name)
	if w == 0 || len(n) < w {
		return false
	}
	for i := 0; i+w <= len(ph); i++ {
		if strings.Contains(n, ph[i:i+w]) {
			return true
		}
	}
	return false
}

// InName reports which secret's placeholder a DNS name carries, folded as
// DNS folds it: the secret's name, or "".
func (s *Set) InName(name string) string {
	if s == nil {
		return ""
	}
	for _, sc := range s.secrets {
		if sc.inFolded(name) {
			return sc.name
		}
	}
	return ""
}
