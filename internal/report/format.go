package report

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// clean makes an untrusted string safe to print on a terminal: control
// characters (C0, DEL, C1, which start escape sequences) and invalid UTF-8
// become '?'. Everything else, including non-ASCII names, stays readable.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// shorten cuts s to at most n runes, marking the cut with "...", so one
// huge URL keeps a human line a line.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// procLabel names the process of an event for a human: "(curl pid 123)",
// "(pid 123)", "(curl)", or "" when the event has neither.
func procLabel(e event.Event) string {
	comm := clean(e.Comm)
	switch {
	case comm != "" && e.PID != 0:
		return "(" + comm + " pid " + strconv.FormatUint(uint64(e.PID), 10) + ")"
	case e.PID != 0:
		return "(pid " + strconv.FormatUint(uint64(e.PID), 10) + ")"
	case comm != "":
		return "(" + comm + ")"
	}
	return ""
}

// hostPort returns where an event went: its host and port, else those of
// its URL (with the scheme's default port), else its dst.
func hostPort(e event.Event) (string, int) {
	if e.Host != "" {
		return e.Host, e.Port
	}
	if u, err := url.Parse(e.URL); err == nil && u.Hostname() != "" {
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			port = defaultPort(u.Scheme)
		}
		return u.Hostname(), port
	}
	if h, p, err := net.SplitHostPort(e.Dst); err == nil {
		port, _ := strconv.Atoi(p)
		return h, port
	}
	return "", e.Port
}

func defaultPort(scheme string) int {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// joinHostPort is net.JoinHostPort (IPv6 in brackets) that leaves out an
// unknown port.
func joinHostPort(host string, port int) string {
	if port == 0 {
		return hostname.Bracket(host)
	}
	return hostname.JoinPort(host, port)
}

// humanBytes writes a byte count with binary units: "180 B", "1.2 KiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const units = "KMGTPE"
	f := float64(n) / 1024
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}

// humanMS writes a duration in milliseconds the way a person reads it:
// "0.04ms", "2.5ms", "12ms", "1.5s".
func humanMS(ms float64) string {
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
}

// plural writes "1 process" / "2 processes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
