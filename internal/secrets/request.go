package secrets

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Check looks for placeholders in the head of a request to host (secure:
// over intercepted TLS): one of a secret that does not belong there (or
// any in the Host header, which never gets a secret) is misuse, returned.
// The rule has not been asked yet: an exfiltration attempt is caught
// whatever the rule would say.
func (s *Set) Check(r *http.Request, host string, secure bool) *Misuse {
	m, _ := s.scanHead(r, host, secure)
	return m
}

// Swap replaces every placeholder of a secret that belongs to host in the
// head of r, a request the rule allowed and Check passed: header values
// (Basic credentials decoded and encoded again), the query and the path,
// on copies of r's header and URL, so what the rule and the logs saw
// keeps the placeholder. It reports whether any was replaced.
func (s *Set) Swap(r *http.Request, host string, secure bool) bool {
	m, use := s.scanHead(r, host, secure)
	if m != nil {
		return false
	}
	swapped := false
	for i, sc := range s.secrets {
		if use[i] {
			sc.swapHead(r)
			swapped = true
		}
	}
	return swapped
}

// scanHead finds the first misuse in r's head and which secrets belonging
// to host it carries.
func (s *Set) scanHead(r *http.Request, host string, secure bool) (m *Misuse, use []bool) {
	if s == nil {
		return nil, nil
	}
	use = make([]bool, len(s.secrets))
	for i, sc := range s.secrets {
		ok := sc.belongs(host, secure)
		hit := func(where, header, v string) bool {
			if !sc.in(v) {
				return false
			}
			if !ok && m == nil {
				if header != "" {
					where += ":" + strings.ToLower(header)
				}
				m = &Misuse{Secret: sc.name, Where: where}
			}
			use[i] = use[i] || ok
			return true
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if hit("header", k, v) || hit("header", k, basicCredentials(v)) {
					break
				}
			}
			if m == nil && sc.inFolded(k) {
				m = &Misuse{Secret: sc.name, Where: "header-name"}
			}
		}
		hit("query", "", r.URL.RawQuery)
		hit("path", "", r.URL.Path)
		hit("path", "", r.URL.RawPath)
		if m == nil && (sc.in(r.Host) || sc.inFolded(r.Host)) {
			m = &Misuse{Secret: sc.name, Where: "host"}
		}
	}
	return m, use
}

// Belongs reports whether any secret belongs to host (secure: over
// intercepted TLS): the origins whose responses Response must see, as
// only they can know a real value.
func (s *Set) Belongs(host string, secure bool) bool {
	if s == nil {
		return false
	}
	for _, sc := range s.secrets {
		if sc.belongs(host, secure) {
			return true
		}
	}
	return false
}

// in reports whether v holds sc's placeholder, as is or percent-encoded.
func (sc *secret) in(v string) bool {
	if len(v) < len(sc.placeholder) {
		return false
	}
	if strings.Contains(v, string(sc.placeholder)) {
		return true
	}
	return sc.phQuery != string(sc.placeholder) && strings.Contains(v, sc.phQuery)
}

// swapHead puts sc's real value in place of its placeholder in r's header
// values, query and path, on copies of the header and URL.
func (sc *secret) swapHead(r *http.Request) {
	r.Header = r.Header.Clone()
	u := *r.URL
	r.URL = &u
	for k, vs := range r.Header {
		for j, v := range vs {
			if b := basicCredentials(v); sc.in(b) {
				vs[j] = v[:len("basic ")] + sc.swapBasic(b)
			} else {
				vs[j] = sc.swap(v)
			}
		}
		r.Header[k] = vs
	}
	u.RawQuery = sc.swap(u.RawQuery)
	u.Path = sc.swap(u.Path)
	u.RawPath = sc.swap(u.RawPath)
}

// swap replaces sc's placeholder in v, as is and percent-encoded (which,
// the two having the same shape, encodes the value the same way).
func (sc *secret) swap(v string) string {
	if !sc.in(v) {
		return v
	}
	v = strings.ReplaceAll(v, string(sc.placeholder), string(sc.value))
	if sc.phQuery != string(sc.placeholder) {
		v = strings.ReplaceAll(v, sc.phQuery, url.QueryEscape(string(sc.value)))
	}
	return v
}

// swapBasic encodes again the Basic credentials plain (user:pass) with
// sc's value in place of its placeholder.
func (sc *secret) swapBasic(plain string) string {
	b := []byte(plain)
	defer clear(b)
	for i := bytes.Index(b, sc.placeholder); i >= 0; i = bytes.Index(b, sc.placeholder) {
		copy(b[i:], sc.value)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// basicCredentials decodes the user:pass of a "Basic <base64>" header
// value; "" when v is not one.
func basicCredentials(v string) string {
	if len(v) < len("basic ") || !strings.EqualFold(v[:len("basic ")], "basic ") {
		return ""
	}
	enc := strings.TrimSpace(v[len("basic "):])
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return ""
		}
	}
	return string(b)
}

// RequestBody streams body, the body of a request the rule allowed to
// host: placeholders of secrets given --secret-in-body that belong there
// become the real values; one of a secret that does not belong there ends
// the stream with a *MisuseError before the placeholder is passed on. The
// length never changes. Body unchanged when there is nothing to look for.
func (s *Set) RequestBody(body io.ReadCloser, host string, secure bool) io.ReadCloser {
	if s == nil || body == nil || body == http.NoBody {
		return body
	}
	var pats []pattern
	for _, sc := range s.secrets {
		switch {
		case !sc.belongs(host, secure):
			pats = append(pats, sc.patterns(nil)...)
		case sc.inBody:
			pats = append(pats, sc.patterns(sc.value)...)
		}
	}
	if len(pats) == 0 {
		return body
	}
	return newReader(body, pats, "body")
}

// patterns are sc's placeholder as is and percent-encoded (a form body),
// replaced by to and its encoding, or misuse when to is nil.
func (sc *secret) patterns(to []byte) []pattern {
	pats := []pattern{{from: sc.placeholder, to: to, secret: sc.name}}
	if sc.phQuery != string(sc.placeholder) {
		p := pattern{from: []byte(sc.phQuery), secret: sc.name}
		if to != nil {
			p.to = []byte(url.QueryEscape(string(to)))
		}
		pats = append(pats, p)
	}
	return pats
}
