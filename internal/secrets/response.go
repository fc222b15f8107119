package secrets

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Response makes sure no real value reaches the client in res, the
// response of a host a secret belongs to (only such an origin knows one):
// each real value in a header value or the body becomes its
// placeholder. The body is rewritten as it streams. Compressed bodies
// cannot be searched, so the caller asks such an origin for identity
// encoding (Accept-Encoding); one that sends gzip anyway is decompressed here (the client
// gets it plain), and any other encoding is an error, for the caller to
// refuse the response rather than pass on what it could not check.
func (s *Set) Response(res *http.Response) error {
	if s == nil {
		return nil
	}
	s.redactHeader(res.Header)
	if res.StatusCode == http.StatusSwitchingProtocols || res.Body == nil || res.Body == http.NoBody {
		return nil
	}
	switch enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			return fmt.Errorf("read gzip response: %w", err)
		}
		res.Body = &gzipBody{Reader: zr, src: res.Body}
		res.Header.Del("Content-Encoding")
		res.Header.Del("Content-Length")
		res.ContentLength = -1
	default:
		return fmt.Errorf("a response in %q encoding cannot be checked for secrets echoed back", enc)
	}
	var pats []pattern
	for _, sc := range s.secrets {
		pats = append(pats, pattern{from: sc.value, to: sc.placeholder, secret: sc.name})
	}
	rd := newReader(res.Body, pats, "response")
	// Trailers arrive with the end of the body, before the caller copies
	// them on.
	rd.atEOF = func() { s.redactHeader(res.Trailer) }
	res.Body = rd
	return nil
}

// redactHeader redacts every value of h.
func (s *Set) redactHeader(h http.Header) {
	for _, vs := range h {
		for j := range vs {
			vs[j] = s.redact(vs[j])
		}
	}
}

// redact replaces every real value in v by its placeholder.
func (s *Set) redact(v string) string {
	for _, sc := range s.secrets {
		if len(v) >= len(sc.value) && strings.Contains(v, string(sc.value)) {
			v = strings.ReplaceAll(v, string(sc.value), string(sc.placeholder))
		}
	}
	return v
}

// gzipBody is a decompressed response body; Close closes the original.
type gzipBody struct {
	*gzip.Reader
	src io.ReadCloser
}

func (g *gzipBody) Close() error {
	g.Reader.Close()
	return g.src.Close()
}
