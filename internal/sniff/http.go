package sniff

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
)

// maxMethod bounds the request method. The longest registered method,
// UPDATEREDIRECTREF, has 17 bytes; a longer run of capitals is not HTTP.
const maxMethod = 24

// isMethodStart reports whether b can start a request method. Methods are
// case-sensitive tokens, and every registered one is upper case (IANA HTTP
// Method Registry), so upper case letters alone are enough to tell a request
// from most binary protocols at the first byte.
func isMethodStart(b byte) bool { return 'A' <= b && b <= 'Z' }

// classifyHTTP reads until the request head (request line and header block)
// is complete, then has net/http parse it. It gives up as soon as the bytes
// stop looking like a request line, so text protocols that start with
// capitals (an SSH banner, "HELO") are Other without waiting for more.
func (r *recorder) classifyHTTP() (Result, error) {
	var s headScan
	for {
		switch v, end := s.scan(r.buf); v {
		case notHTTP:
			return Result{}, nil
		case headComplete:
			return parseHead(r.buf[:end], s.lineEnd), nil
		}
		if err := r.fill(); err != nil {
			if r.full() {
				return Result{}, nil
			}
			return Result{}, r.readError()
		}
	}
}

// parseHead has net/http parse a complete request head; lineEnd is where
// the request line ends. A head net/http refuses (a bad header line, two
// Host headers, conflicting framing) is not HTTP as far as the jail can
// tell, so it is Other.
func parseHead(head []byte, lineEnd int) Result {
	// The reader needs no room beyond the head itself (bufio's default is
	// 4 KiB, most heads are a few hundred bytes).
	req, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(head), min(len(head), 4<<10)))
	if err != nil {
		return Result{}
	}
	host := req.Host
	if req.URL.Host != "" {
		// ReadRequest prefers the target's host (RFC 9112, section 3.2.2)
		// and drops the Host header; the caller wants both as sent, so read
		// the header block again.
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(head[lineEnd:]))).ReadMIMEHeader()
		if err != nil {
			return Result{}
		}
		host = h.Get("Host")
	}
	return Result{Kind: KindHTTP, Method: req.Method, Target: req.RequestURI, Host: host}
}

// scanVerdict is what headScan has found so far.
type scanVerdict int

const (
	needMore scanVerdict = iota
	notHTTP
	headComplete
)

// Parts of the request head, in order.
const (
	inMethod = iota
	inTarget
	inVersion
	inHeaders
)

// headScan finds the end of a request head incrementally: each call resumes
// where the last stopped, so a client trickling bytes costs O(n) in all,
// not O(n²). It checks the request line byte by byte against
// method SP request-target SP "HTTP/1." DIGIT [CR] LF (RFC 9112, section 3),
// which is what lets it say "not HTTP" early; header lines are only split,
// net/http judges them.
type headScan struct {
	i       int // next byte to look at
	part    int
	start   int // first byte of the current part, or of the current header line
	lineEnd int // first byte after the request line
}

const version = "HTTP/1."

func (s *headScan) scan(b []byte) (scanVerdict, int) {
	for s.i < len(b) {
		c, k := b[s.i], s.i-s.start
		switch s.part {
		case inMethod:
			switch {
			case c == ' ' && k > 0:
				s.part, s.start = inTarget, s.i+1
			case k >= maxMethod:
				return notHTTP, 0
			case 'A' <= c && c <= 'Z', c == '-' && k > 0:
			default:
				return notHTTP, 0
			}
		case inTarget:
			switch {
			case c == ' ' && k > 0:
				s.part, s.start = inVersion, s.i+1
			case c <= ' ' || c == 0x7f:
				// Controls, an empty target, or the end of the line
				// without a version (HTTP/0.9).
				return notHTTP, 0
			}
		case inVersion:
			switch {
			case k < len(version):
				if c != version[k] {
					// Includes "HTTP/2.0", the h2c prior-knowledge preface.
					return notHTTP, 0
				}
			case k == len(version):
				if c < '0' || c > '9' {
					return notHTTP, 0
				}
			case c == '\n' && (k == len(version)+1 || b[s.i-1] == '\r'):
				s.part, s.start = inHeaders, s.i+1
				s.lineEnd = s.start
			case c == '\r' && k == len(version)+1:
			default:
				return notHTTP, 0
			}
		case inHeaders:
			nl := bytes.IndexByte(b[s.i:], '\n')
			if nl < 0 {
				s.i = len(b)
				return needMore, 0
			}
			s.i += nl
			if line := b[s.start:s.i]; len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
				return headComplete, s.i + 1
			}
			s.start = s.i + 1
		}
		s.i++
	}
	return needMore, 0
}
