package hostname

import "strings"

// Valid reports whether name (already lower-cased, without a trailing dot)
// is a DNS name: 1 to 253 bytes of non-empty labels of at most 63 bytes
// each, made of a-z, 0-9, '-' and '_'. Anything else could mean one host to
// a rule that parses r.url and another to the resolver.
func Valid(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
