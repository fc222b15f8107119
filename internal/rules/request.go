package rules

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
)

// Dest is where a request goes, as its rule sees it.
type Dest struct {
	Scheme string // http, https, tcp, dns
	Host   string // normalised (package hostname): no port, IPv6 without brackets
	Port   int
}

// DefaultPort is the port a URL of scheme leaves out: 80 for http, 443 for
// https, 53 for dns, none (0) for any other.
func DefaultPort(scheme string) int {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	case "dns":
		return 53
	}
	return 0
}

// NewRequest builds the request a rule sees for method to d, from the
// client at requesterIP, made by proc. It is the one place a request's URL
// is written, so the proxy, the DNS shim and --test agree on it:
//
//   - CONNECT (a connection decided once and spliced unopened, TLS or
//     tcp): scheme://host:port, the port always written; path "".
//   - Any other method: scheme://host, ":port" unless it is the scheme's
//     default, then u's escaped path ("/" put in front of one that lacks
//     it, so that "*" or "" never runs into the host) and "?query"; path is
//     u's unescaped path. u is nil for a request without one (a DNS query:
//     dns://name).
//
// An IPv6 host is in brackets in the URL, never in Host.
func NewRequest(method string, d Dest, u *url.URL, requesterIP string, proc Proc) *Request {
	r := &Request{
		Method: method, Scheme: d.Scheme, Host: d.Host, Port: d.Port,
		RequesterIP: requesterIP, Proc: proc,
	}
	host := hostname.Bracket(d.Host)
	if method == "CONNECT" {
		r.URL = d.Scheme + "://" + host + ":" + strconv.Itoa(d.Port)
		return r
	}
	port := ""
	if d.Port != DefaultPort(d.Scheme) {
		port = ":" + strconv.Itoa(d.Port)
	}
	path, query := "", ""
	if u != nil {
		r.Path = u.Path
		path = u.EscapedPath()
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if u.RawQuery != "" {
			query = "?" + u.RawQuery
		}
	}
	r.URL = d.Scheme + "://" + host + port + path + query
	return r
}

// RequestFromURL builds the request --test evaluates: method to raw, an
// http or https URL typed on the command line, from 127.0.0.1 and no
// process. Host, port and path are what the proxy would give a request
// for that URL, but for two things --test has always done: the rule sees
// the URL as typed, not as the proxy writes it, and an empty path is "/".
func RequestFromURL(method, raw string) (*Request, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("want an http or https URL, got %q", raw)
	}
	d := Dest{Scheme: u.Scheme, Host: strings.ToLower(u.Hostname()), Port: DefaultPort(u.Scheme)}
	if p := u.Port(); p != "" {
		if d.Port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("bad port in %q", raw)
		}
	}
	r := NewRequest(method, d, u, "127.0.0.1", Proc{})
	r.URL = raw
	if r.Path == "" {
		r.Path = "/"
	}
	return r, nil
}
