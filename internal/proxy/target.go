package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// target is where one request goes, once resolveTarget and validTarget
// have checked that the rule and the resolver will see the same host.
type target struct {
	host string // no port, IPv6 without brackets
	port int
}

func (t target) hostport() string { return hostname.JoinPort(t.host, t.port) }

// splitHost splits a Host header value into a normalised host and a port
// (0 when absent, -1 when it is not a port number).
func splitHost(h string) (string, int) {
	if host, p, err := net.SplitHostPort(h); err == nil {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil || port == 0 {
			return hostname.Normalize(host), -1
		}
		return hostname.Normalize(host), int(port)
	}
	return hostname.Normalize(h), 0
}

// requestTarget decides where r goes (resolveTarget, with fake DNS
// addresses replaced by their names) or why it must be denied.
func (p *Proxy) requestTarget(c *conn, r *http.Request) (target, string) {
	t, bad := c.resolveTarget(r)
	if bad != "" {
		return t, bad
	}
	t.host = p.unsynth(t.host)
	if !validTarget(t) {
		return t, fmt.Sprintf("not a host and port ebpfjail can vouch for: %q port %d", t.host, t.port)
	}
	if p.isLoop(t) {
		return t, "Loop detected: a request to ebpfjail's own proxy"
	}
	return t, ""
}

// matchesGlob reports whether name, normalised, matches one of globs (the
// operator's --no-mitm and --allow-local-name patterns), whatever their
// case.
func matchesGlob(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(strings.ToLower(g), name); ok {
			return true
		}
	}
	return false
}

// connectTarget is the host and port of a CONNECT request, if valid.
func connectTarget(r *http.Request) (target, bool) {
	host, port := splitHost(r.Host)
	t := target{host: host, port: port}
	return t, validTarget(t)
}

// validTarget reports whether t names a host ebpfjail may resolve and a
// port it may dial: a DNS name of letters, digits, '-' and '_' labels, or an
// IP address without a zone. Anything else could mean one host to the rule
// (which may parse r.url) and another to the resolver.
func validTarget(t target) bool {
	return t.port >= 1 && t.port <= 65535 && validHost(t.host)
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	return hostname.Valid(h)
}

// resolveTarget decides where r goes, or why it must be denied.
func (c *conn) resolveTarget(r *http.Request) (target, string) {
	hhost, hport := splitHost(r.Host)
	if c.scheme == "https" || c.name != "" {
		// The name was fixed by the TLS handshake (or CONNECT line): a Host
		// naming another host would reach a host the rule never saw.
		if r.Host != "" && hhost != c.name {
			return target{}, fmt.Sprintf("Host %q differs from the server name %q", r.Host, c.name)
		}
		return target{host: c.name, port: c.port}, ""
	}
	if r.URL.IsAbs() {
		uhost, uport := splitHost(r.URL.Host)
		if uport == 0 {
			uport = rules.DefaultPort(r.URL.Scheme)
		}
		if r.URL.Scheme != "http" {
			return target{}, fmt.Sprintf("scheme %q in a plain HTTP request", r.URL.Scheme)
		}
		if r.Host != "" && (hhost != uhost || (hport != 0 && hport != uport)) {
			return target{}, fmt.Sprintf("Host %q differs from the URL's host %q", r.Host, r.URL.Host)
		}
		return target{host: uhost, port: uport}, ""
	}
	if hhost == "" {
		// HTTP/1.0 without Host: all we know is where it went.
		return target{host: c.destHost(), port: c.port}, ""
	}
	if hport == 0 {
		hport = c.port
	}
	return target{host: hhost, port: hport}, ""
}

// isLoop reports whether t is this proxy itself (explicit mode, where a
// client can name any address).
func (p *Proxy) isLoop(t target) bool {
	if p.cfg.Explicit == "" {
		return false
	}
	for _, ln := range p.lns {
		local := ln.Addr().(*net.TCPAddr)
		if t.port != local.Port {
			continue
		}
		if t.host == "localhost" {
			return true
		}
		a, err := netip.ParseAddr(t.host)
		if err != nil {
			continue
		}
		a = a.Unmap()
		la, _ := netip.AddrFromSlice(local.IP)
		if a.IsLoopback() || a.IsUnspecified() || a == la.Unmap() {
			return true
		}
	}
	return false
}

// unsynth replaces a synthetic address written as a host (a URL or Host
// header naming 198.18.x.y) with the name it stands for.
func (p *Proxy) unsynth(host string) string {
	if p.cfg.Synthetic == nil {
		return host
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !p.cfg.Synthetic.Contains(a) {
		return host
	}
	if name, ok := p.cfg.Synthetic.Name(a); ok {
		return name
	}
	return host
}

// ruleRequest is the request the rule sees for r going to t.
func (c *conn) ruleRequest(r *http.Request, t target) *rules.Request {
	return rules.NewRequest(r.Method, rules.Dest{Scheme: c.scheme, Host: t.host, Port: t.port}, r.URL, c.requesterIP, c.proc)
}

// connectRequest is the request the rule sees for a whole connection to t,
// decided once and spliced unopened (method CONNECT, url scheme://host:port).
func (c *conn) connectRequest(scheme string, t target) *rules.Request {
	return rules.NewRequest(http.MethodConnect, rules.Dest{Scheme: scheme, Host: t.host, Port: t.port}, nil, c.requesterIP, c.proc)
}
