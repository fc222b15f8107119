package proxy

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
)

// The lean path's parser takes only heads it can read without doubt and
// leaves everything else to net/http: a request head it does not take is
// handed, with the rest of the connection, to the existing path (which
// then answers 400 where net/http refuses), so the lean path can never
// read a request differently from net/http, and framing cannot be
// smuggled between the two. FuzzLeanParse checks that every head taken
// here is read the same by http.ReadRequest.
//
// A request head is taken when it is: an HTTP/1.1 request line with a
// token method (not CONNECT or PRI) and an origin-form target of visible
// ASCII that url.ParseRequestURI accepts; CRLF line ends only; header
// lines of token names, a colon right after the name, and values of
// visible ASCII, space and tab (no obs-fold, no obs-text); exactly one
// Host, of host-name characters; at most one Content-Length, digits only;
// and none of Transfer-Encoding, Expect, Upgrade, TE, Trailer, nor a
// Connection other than keep-alive or close. A response head (from an
// upstream, which cannot be handed anywhere) is taken on the same terms
// with any HTTP/1.x version and a three-digit status, or refused: the
// lean path answers 502 where net/http's reading might have been lenient
// (obs-fold, bare LF, Content-Length together with Transfer-Encoding,
// Transfer-Encoding in an HTTP/1.0 response).

// leanField is one header line, value trimmed of spaces and tabs.
type leanField struct {
	name, value string
}

// leanHead is a parsed request or response head.
type leanHead struct {
	method, target string // request; target is a response's "200 OK"
	url            *url.URL
	status         int    // response
	minor          byte   // HTTP/1.x
	host           string // the Host header's value (request)
	fields         []leanField
	// contentLength is the body's declared length, -1 without one.
	contentLength int64
	chunked       bool // response: Transfer-Encoding: chunked
	close         bool // Connection: close
	keepAlive     bool // Connection: keep-alive
	// hop are the other headers a response's Connection names.
	hop []string
}

// leanHeadEnd is the length of the head at the start of b (up to and
// including the blank line), 0 when b holds no complete head yet. A bare
// LF ends lines too, so that a client using them is not kept waiting: the
// parser then refuses the head.
func leanHeadEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// isTchar reports whether c may be part of a token (RFC 9110, 5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func isToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// isHostChar is what a Host value may hold here: a name, an IPv4 or a
// bracketed IPv6 address, and a port.
func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']'
}

// parseLeanRequest reads a complete request head (leanHeadEnd's length);
// ok false means: hand it to net/http.
func parseLeanRequest(head []byte) (h leanHead, ok bool) {
	line, rest, ok := cutLine(head)
	if !ok {
		return h, false
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return h, false
	}
	method := line[:sp1]
	line = line[sp1+1:]
	sp2 := bytes.IndexByte(line, ' ')
	if sp2 <= 0 || string(line[sp2+1:]) != "HTTP/1.1" || line[0] != '/' {
		return h, false
	}
	for _, c := range line[:sp2] {
		if c <= ' ' || c >= 0x7f {
			return h, false
		}
	}
	switch string(method) {
	case "CONNECT", "PRI":
		return h, false
	}
	h.method, h.target, h.minor = string(method), string(line[:sp2]), 1
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return h, false
	}
	h.url = u
	if !parseLeanFields(&h, rest, true) {
		return h, false
	}
	return h, true
}

// parseLeanResponse reads a complete response head; ok false means 502.
func parseLeanResponse(head []byte) (h leanHead, ok bool) {
	line, rest, ok := cutLine(head)
	if !ok || len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return h, false
	}
	if line[7] != '0' && line[7] != '1' {
		return h, false
	}
	h.minor = line[7] - '0'
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return h, false
		}
	}
	if code[0] == '0' || (len(line) > 12 && line[12] != ' ') {
		return h, false
	}
	for _, c := range line[12:] {
		if (c < ' ' && c != '\t') || c == 0x7f { // obs-text allowed, as in values
			return h, false
		}
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	h.target = string(line[9:]) // the status line after the version
	if !parseLeanFields(&h, rest, false) {
		return h, false
	}
	return h, true
}

// cutLine splits off the first CRLF-ended line of b.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

// parseLeanFields reads the header block b (its blank line included) into
// h, checking what framing and hop-by-hop headers say.
func parseLeanFields(h *leanHead, b []byte, request bool) bool {
	h.contentLength = -1
	h.fields = make([]leanField, 0, 16)
	// One string for the whole block: names and values are slices of it,
	// not an allocation each.
	str, off := string(b), 0
	hosts, lengths, te := 0, 0, 0
	for {
		line, rest, ok := cutLine(b)
		if !ok {
			return false
		}
		b = rest
		if len(line) == 0 {
			break
		}
		f, ok := parseLeanField(line, str[off:off+len(line)], request)
		off += len(line) + 2
		if !ok {
			return false
		}
		switch n := f.name; {
		case strings.EqualFold(n, "host"):
			hosts++
			h.host = f.value
		case strings.EqualFold(n, "content-length"):
			lengths++
			if h.contentLength, ok = parseContentLength(f.value); !ok {
				return false
			}
		case strings.EqualFold(n, "transfer-encoding"):
			te++
			h.chunked = strings.EqualFold(f.value, "chunked")
		case strings.EqualFold(n, "connection"):
			if !h.connection(f.value, request) {
				return false
			}
		case request && (strings.EqualFold(n, "expect") || strings.EqualFold(n, "upgrade") ||
			strings.EqualFold(n, "te") || strings.EqualFold(n, "trailer")):
			return false
		}
		h.fields = append(h.fields, f)
	}
	if len(b) != 0 || lengths > 1 || te > 1 || (te == 1 && (!h.chunked || lengths > 0)) {
		return false
	}
	if te > 0 && h.minor != 1 {
		// Transfer-Encoding in HTTP/1.0 is faulty (RFC 9112, 6.1):
		// net/http ignores it and reads to the close; refused here.
		return false
	}
	if request {
		return hosts == 1 && validLeanHost(h.host) && te == 0
	}
	return hosts <= 1
}

// connection reads a Connection value: a request's may only say close or
// keep-alive; a response's other tokens name headers that go no further.
func (h *leanHead) connection(v string, request bool) bool {
	for v != "" {
		tok, rest, _ := strings.Cut(v, ",")
		v = rest
		tok = strings.Trim(tok, " \t")
		switch {
		case strings.EqualFold(tok, "close"):
			h.close = true
		case strings.EqualFold(tok, "keep-alive"):
			h.keepAlive = true
		case request:
			return false
		case tok != "":
			h.hop = append(h.hop, tok)
		}
	}
	return true
}

// parseLeanField splits a header line. A request's value is visible
// ASCII, space and tab; a response's may also hold obs-text (bytes from
// 0x80), which origins send (UTF-8 file names) and net/http passes.
func parseLeanField(line []byte, str string, request bool) (leanField, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return leanField{}, false
	}
	start, end := colon+1, len(line)
	for _, c := range line[start:] {
		if (c < ' ' && c != '\t') || c == 0x7f || (request && c > 0x7f) {
			return leanField{}, false
		}
	}
	for start < end && (line[start] == ' ' || line[start] == '\t') {
		start++
	}
	for end > start && (line[end-1] == ' ' || line[end-1] == '\t') {
		end--
	}
	return leanField{name: str[:colon], value: str[start:end]}, true
}

func validLeanHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !isHostChar(h[i]) {
			return false
		}
	}
	return true
}

// parseContentLength takes 1 to 18 digits, nothing else.
func parseContentLength(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// leanNoBody reports whether a response to method with status has no body
// whatever its head says (RFC 9112, section 6.3).
func leanNoBody(status int, method string) bool {
	return method == "HEAD" || status/100 == 1 || status == 204 || status == 304
}
