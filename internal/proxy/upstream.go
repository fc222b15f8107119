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
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
)

// dialTimeout bounds connecting upstream; the client's own connect() already
// succeeded (it reached us), so a dead upstream shows as a reset.
const dialTimeout = 10 * time.Second

// Resolver picks the addresses ebpfjail dials for a host: the child's own
// destination is used only when it is one of the host's addresses, so a
// request naming an allowed host cannot be steered to an address of the
// child's choosing.
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
	name := hostname.Normalize(host)
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

// forward is one leg upstream: where it goes, and what it reports back.
// It is the one thing that travels in a dial's context (withForward): the
// dialer takes the child's original address from it, for an HTTP request
// (the forwarder's Rewrite and handlers also read it) and for a spliced
// connection alike.
type forward struct {
	scheme   string
	hostport string
	// dialIP is the child's original destination (see conn.dialIP).
	dialIP netip.Addr
	// err is why the upstream failed, for the request's event.
	err string
	// tx is what the rule lets the client send (max_tx_bytes), upgraded
	// connections included.
	tx *txBudget
	// local is set when the name led to this host itself (checkLocal).
	local error
	// secrets, when the request carried a secret, redacts the response;
	// misuse is a placeholder found in the body (armSecrets).
	secrets *secrets.Set
	misuse  *secrets.Misuse
}

type forwardKey struct{}

// withForward puts fw in ctx, for the dialer and the forwarder.
func withForward(ctx context.Context, fw *forward) context.Context {
	return context.WithValue(ctx, forwardKey{}, fw)
}

// forwardOf is the forward in ctx, nil without one.
func forwardOf(ctx context.Context) *forward {
	fw, _ := ctx.Value(forwardKey{}).(*forward)
	return fw
}

// origIP is the address the child connected to, which the dialer prefers
// when it belongs to the host (Resolver.Addrs); invalid without one.
func origIP(ctx context.Context) netip.Addr {
	if fw := forwardOf(ctx); fw != nil {
		return fw.dialIP
	}
	return netip.Addr{}
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
