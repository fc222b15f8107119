package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"path"
)

// Spec is one --secret after parsing and loading.
type Spec struct {
	Name      string   // environment variable name, e.g. ANTHROPIC_API_KEY
	Hosts     []string // host globs, same syntax and matching as --no-mitm globs
	Value     []byte   // the real value (the caller wipes its copy after New)
	InBody    bool     // --secret-in-body NAME: also swap in request bodies (streaming, bounded)
	Cleartext bool     // --secret-cleartext NAME: may be sent over plain HTTP too
}

// Set is the run's secrets: each real value and its placeholder. A nil
// *Set is valid and holds no secret (the feature is off).
type Set struct {
	secrets []*secret
	mem     *lockedMem
}

// secret is one Spec with its placeholder; value points into Set.mem.
type secret struct {
	name        string
	hosts       []string
	value       []byte
	placeholder []byte
	// prefix is how many leading bytes the placeholder shares with the
	// value (a known prefix); folded is the rest of the placeholder as a
	// DNS name carries it (see fold).
	prefix int
	folded string
	// phQuery is the placeholder percent-encoded (a query or form value).
	phQuery   string
	inBody    bool
	cleartext bool
}

// New makes a placeholder for each spec and copies the real values into
// locked memory. Errors name the secret, never its value.
func New(specs []Spec) (*Set, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	total := 0
	seen := map[string]bool{}
	for _, sp := range specs {
		if sp.Name == "" {
			return nil, errors.New("secret without a name")
		}
		if seen[sp.Name] {
			return nil, fmt.Errorf("secret %s given twice", sp.Name)
		}
		seen[sp.Name] = true
		if len(sp.Value) == 0 {
			return nil, fmt.Errorf("secret %s: the value is empty", sp.Name)
		}
		if err := checkSpec(sp); err != nil {
			return nil, fmt.Errorf("secret %s: %w", sp.Name, err)
		}
		total += len(sp.Value)
	}
	if err := noCoreDumps(); err != nil {
		return nil, err
	}
	s := &Set{mem: newLockedMem(total)}
	off := 0
	for _, sp := range specs {
		v := s.mem.buf[off : off+len(sp.Value) : off+len(sp.Value)]
		copy(v, sp.Value)
		off += len(sp.Value)
		ph, prefix, err := newPlaceholder(v, s.secrets)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("secret %s: %w", sp.Name, err)
		}
		s.secrets = append(s.secrets, &secret{
			name: sp.Name, hosts: append([]string(nil), sp.Hosts...), value: v,
			placeholder: ph, prefix: prefix, folded: fold(string(ph[prefix:])), phQuery: url.QueryEscape(string(ph)), inBody: sp.InBody, cleartext: sp.Cleartext,
		})
	}
	return s, nil
}

// checkSpec refuses what no placeholder could stand for: no host, a glob
// that does not parse, a value with a control byte (a header cannot carry
// it; a trailing newline read from a file is the usual one).
func checkSpec(sp Spec) error {
	if len(sp.Hosts) == 0 {
		return errors.New("no host")
	}
	for _, g := range sp.Hosts {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("host glob %q does not parse", g)
		}
	}
	for _, b := range sp.Value {
		if b < 0x20 || b == 0x7f {
			return errors.New("the value holds a control character (a newline at the end of a file?)")
		}
	}
	return nil
}

// Env returns "NAME=PLACEHOLDER" for each secret, for the command's
// environment.
func (s *Set) Env() []string {
	if s == nil {
		return nil
	}
	env := make([]string, 0, len(s.secrets))
	for _, sc := range s.secrets {
		env = append(env, sc.name+"="+string(sc.placeholder))
	}
	return env
}

// Names returns the secrets' names, in the order given to New.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.secrets))
	for _, sc := range s.secrets {
		names = append(names, sc.name)
	}
	return names
}

// LockError says why the real values could not be locked in memory (nil
// when they are), for the caller's debug log: the values are kept anyway.
func (s *Set) LockError() error {
	if s == nil || s.mem == nil {
		return nil
	}
	return s.mem.err
}

// Close wipes the real values and unlocks their memory. The Set must not
// be used afterwards.
func (s *Set) Close() {
	if s == nil || s.mem == nil {
		return
	}
	s.mem.wipe()
	s.mem = nil
}
