package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
)

// knownPrefixes are the fixed starts of common API keys, longest first: a
// client that checks a key's format (the Anthropic and OpenAI SDKs, gh,
// the AWS CLI) still accepts the placeholder, and a log reader still sees
// what kind of key it stands for.
var knownPrefixes = []string{
	"sk-ant-admin01-", "sk-ant-api03-", "sk-ant-oat01-", "github_pat_", "sk-ant-",
	"sk-proj-", "sk-svcacct-", "sk-admin-", "sk_live_", "sk_test_", "rk_live_", "rk_test_",
	"xoxb-", "xoxp-", "xoxa-", "xapp-", "glpat-", "hf_", "npm_", "gsk_", "pplx-", "AIza",
	"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "AKIA", "ASIA", "sk-", "pk-",
}

// minRandom is the fewest random characters a placeholder has: enough that
// no placeholder occurs by chance in other traffic or equals another's.
const minRandom = 16

// errTooShort is New's error for a value too short to hide behind a
// placeholder that is both the same shape and unique.
var errTooShort = fmt.Errorf("the value is too short for a unique placeholder of the same shape (fewer than %d letters and digits after its prefix)", minRandom)

// newPlaceholder returns a random stand-in for value: the same length, a
// known prefix kept, each letter or digit replaced by a random one of the
// same class (hex digits stay hex), every other byte ('-', '_', '.', ...)
// kept in place. It differs from value and from every placeholder in taken.
func newPlaceholder(value []byte, taken []*secret) (ph []byte, prefix int, err error) {
	for _, p := range knownPrefixes {
		if bytes.HasPrefix(value, []byte(p)) && len(value) > len(p) {
			prefix = len(p)
			break
		}
	}
	core := value[prefix:]
	n := 0
	for _, b := range core {
		if classOf(b) != "" {
			n++
		}
	}
	if n < minRandom {
		return nil, 0, errTooShort
	}
	hex := isHex(core)
	for range 8 {
		ph = make([]byte, len(value))
		copy(ph, value[:prefix])
		for i, b := range core {
			alphabet := classOf(b)
			if hex && alphabet != "" {
				alphabet = hexLower
				if b >= 'A' && b <= 'F' {
					alphabet = hexUpper
				}
			}
			if alphabet == "" {
				ph[prefix+i] = b
				continue
			}
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return nil, 0, fmt.Errorf("make placeholder: %w", err)
			}
			ph[prefix+i] = alphabet[k.Int64()]
		}
		if unique(ph, value, taken) {
			return ph, prefix, nil
		}
	}
	return nil, 0, errors.New("make placeholder: no unique one found")
}

const (
	lower    = "abcdefghijklmnopqrstuvwxyz"
	upper    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits   = "0123456789"
	hexLower = "0123456789abcdef"
	hexUpper = "0123456789ABCDEF"
)

// classOf is the alphabet a placeholder draws from in place of b; "" keeps b.
func classOf(b byte) string {
	switch {
	case b >= 'a' && b <= 'z':
		return lower
	case b >= 'A' && b <= 'Z':
		return upper
	case b >= '0' && b <= '9':
		return digits
	}
	return ""
}

// isHex reports whether core's letters and digits are all hex digits of
// one case, with at least one letter: such a value (a SHA-like token) gets
// a hex placeholder, which a format check for hex accepts.
func isHex(core []byte) bool {
	lowerSeen, upperSeen := false, false
	for _, b := range core {
		switch {
		case b >= 'a' && b <= 'f':
			lowerSeen = true
		case b >= 'A' && b <= 'F':
			upperSeen = true
		case classOf(b) != "" && (b < '0' || b > '9'):
			return false
		}
	}
	return lowerSeen != upperSeen
}

// unique reports whether ph is neither value nor overlaps another secret's
// placeholder or value.
func unique(ph, value []byte, taken []*secret) bool {
	if bytes.Equal(ph, value) {
		return false
	}
	for _, t := range taken {
		if bytes.Contains(ph, t.placeholder) || bytes.Contains(t.placeholder, ph) ||
			bytes.Contains(ph, t.value) || bytes.Contains(t.value, ph) {
			return false
		}
	}
	return true
}
