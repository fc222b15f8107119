package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver picks the addresses ebpfjail dials for a host (DESIGN.md §1.5):
// the child's own destination is used only when it is one of the host's
// addresses, so a request naming an allowed host cannot be steered to an
// address of the child's choosing.
type Resolver struct {
	// Pins are --resolve HOST:ADDR entries, by lower-case host name.
	Pins map[string][]netip.Addr
	// Lookup resolves a name; nil means the system resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// LocalNames are globs of names that may resolve to this host itself
	// (--allow-local-name); other names never lead there (checkLocal).
	LocalNames []string
	// OwnAddrs lists this host's addresses; nil means its interfaces'.
	OwnAddrs func() ([]netip.Prefix, error)
}

// Addrs returns the addresses to dial for host, preferring orig (the
// address the child connected to) when it belongs to host.
func (r *Resolver) Addrs(ctx context.Context, host string, orig netip.Addr) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	name := normalizeHost(host)
	addrs, ok := r.Pins[name]
	if !ok {
		lookup := r.Lookup
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		var err error
		addrs, err = lookup(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", name)
	}
	orig = orig.Unmap()
	for _, a := range addrs {
		if a.Unmap() == orig {
			return []netip.Addr{orig}, nil
		}
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

// normalizeHost lower-cases a host name and drops a trailing dot and IPv6
// brackets.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

type origKey struct{}

// withOrigIP carries the child's original destination address to the dialer.
func withOrigIP(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, origKey{}, a)
}

func origIP(ctx context.Context) netip.Addr {
	if fw, ok := ctx.Value(forwardKey{}).(*forward); ok {
		return fw.dialIP
	}
	a, _ := ctx.Value(origKey{}).(netip.Addr)
	return a
}

// dialer dials a host:port through the Resolver, trying each address.
type dialer struct {
	resolver *Resolver
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// never are addresses that must not be dialed (fake DNS answers).
	never func(netip.Addr) bool
}

func (d *dialer) DialContext(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", hostport)
	}
	addrs, err := d.resolver.Addrs(ctx, host, origIP(ctx))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		if d.never != nil && d.never(a) {
			errs = append(errs, fmt.Errorf("dial %s: a stand-in address from fake DNS, not a host", a))
			continue
		}
		if err := d.resolver.checkLocal(host, a); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := d.dial(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// newTransport is the upstream HTTP client side: verified TLS with the
// original server name (never skipped), connections reused per host. h2
// says whether it may speak HTTP/2 to the origin: the proxy matches the
// client's protocol, because h2 multiplexes every client onto one upstream
// connection (one read loop, a write syscall per request), which halved
// the keep-alive rate of HTTP/1.1 clients, while an HTTP/1.1 pool keeps one
// upstream connection per busy client connection.
func newTransport(d *dialer, roots *x509.CertPool, h2 bool) *http.Transport {
	t := &http.Transport{
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: h2,
		// Enough idle connections for a busy client's concurrency: a pool
		// smaller than that closes and re-handshakes upstream connections
		// under load.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// No response timeout: long polls and streams are legitimate.
		ExpectContinueTimeout: time.Second,
		// Also HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	if !h2 {
		// A non-nil empty map keeps HTTP/2 off.
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return t
}
