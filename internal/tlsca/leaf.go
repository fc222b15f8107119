package tlsca

import (
	"container/list"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
)

// leafCall is one signing in progress; requests for the same name wait on
// done instead of signing again.
type leafCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// Leaf returns a certificate for host, signed by the CA, for the proxy to
// present to a jailed client. host is a DNS name or an IP literal (IPv6
// without brackets, though brackets are tolerated); it is lower-cased and a
// trailing dot removed, and an IP literal gets an IP SAN instead of a DNS
// SAN. The leaf is valid from an hour ago for about a week and is only for
// server authentication.
//
// Leaves are cached: a cached leaf is returned until it is within a day of
// expiring, and concurrent first requests for one name sign once. The
// returned certificate is shared; callers must not modify it.
func (ca *CA) Leaf(host string) (*tls.Certificate, error) {
	name, ip, err := normalizeHost(host)
	if err != nil {
		return nil, err
	}
	now := ca.now()

	ca.mu.Lock()
	if cert, ok := ca.cache.get(name); ok && ca.fresh(cert.Leaf, now) {
		ca.mu.Unlock()
		return cert, nil
	}
	if call, ok := ca.inflight[name]; ok {
		ca.mu.Unlock()
		<-call.done
		return call.cert, call.err
	}
	call := &leafCall{done: make(chan struct{})}
	ca.inflight[name] = call
	ca.mu.Unlock()

	call.cert, call.err = ca.sign(name, ip, now)

	ca.mu.Lock()
	delete(ca.inflight, name)
	if call.err == nil {
		ca.cache.add(name, call.cert)
	}
	ca.mu.Unlock()
	close(call.done)
	return call.cert, call.err
}

// fresh reports whether a cached leaf may still be handed out at now.
func (ca *CA) fresh(leaf *x509.Certificate, now time.Time) bool {
	renewAt := leaf.NotAfter.Add(-ca.renewBefore)
	// A leaf cut short by the CA's own expiry cannot be renewed into a
	// longer one; re-signing it on every request would only burn CPU.
	if !leaf.NotAfter.Before(ca.cert.NotAfter) {
		renewAt = leaf.NotAfter
	}
	return now.Before(renewAt)
}

func (ca *CA) sign(name string, ip netip.Addr, now time.Time) (*tls.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	// Never past the CA: clients reject a chain whose issuer expired
	// anyway, and an honest date makes that failure legible.
	notAfter := now.Add(ca.leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"ebpfjail"}},
		// An hour of slack for a jailed client whose clock is slightly
		// behind ours.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip.IsValid() {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{name}
	}
	// Clients match the SAN only (RFC 6125), but a CommonName makes the
	// leaf readable in logs and old tools; it must fit X.509's 64
	// characters.
	if len(name) <= 64 {
		tmpl.Subject.CommonName = name
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign leaf for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse leaf for %s: %w", name, err)
	}
	ca.signings.Add(1)
	return &tls.Certificate{
		Certificate: [][]byte{der},
		PrivateKey:  ca.leafKey,
		Leaf:        leaf,
	}, nil
}

// normalizeHost returns the cache key for host and, for an IP literal, the
// address. Names are lower-cased and lose a trailing dot because DNS is
// case-insensitive and "example.com." is "example.com": one leaf serves
// every spelling.
func normalizeHost(host string) (string, netip.Addr, error) {
	name := hostname.Normalize(host) // the proxy's spelling, so both key the same leaf
	// Only what could be an address is parsed as one: a failed ParseAddr
	// allocates its error, and this is the cache-hit path.
	if mayBeIP(name) {
		if ip, err := netip.ParseAddr(name); err == nil {
			// A zone means nothing to a certificate, and Go encodes an
			// IPv4-mapped address as IPv4 anyway: key the cache the same way.
			ip = ip.WithZone("").Unmap()
			return ip.String(), ip, nil
		}
	}
	if !validName(name) {
		return "", netip.Addr{}, fmt.Errorf("mint leaf: invalid host name %q", host)
	}
	return name, netip.Addr{}, nil
}

// mayBeIP reports whether name could be an IP literal: IPv6 has a colon,
// and IPv4 ends in a digit (no top-level domain is numeric).
func mayBeIP(name string) bool {
	if name == "" {
		return false
	}
	last := name[len(name)-1]
	return strings.Contains(name, ":") || '0' <= last && last <= '9'
}

// validName accepts what may appear as a DNS SAN: ASCII labels of letters,
// digits, hyphens and underscores (seen in real host names), 1 to 63 bytes
// each, 253 in all. Anything else would be refused by clients, or is an
// attempt to smuggle something into a certificate.
func validName(name string) bool { return hostname.Valid(name) }

// lru is a least-recently-used cache of leaves. It is not safe for
// concurrent use; CA.mu guards it.
type lru struct {
	max   int
	order *list.List // of *lruEntry, most recently used first
	items map[string]*list.Element
}

type lruEntry struct {
	name string
	cert *tls.Certificate
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *lru) get(name string) (*tls.Certificate, bool) {
	e, ok := c.items[name]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).cert, true
}

func (c *lru) add(name string, cert *tls.Certificate) {
	if e, ok := c.items[name]; ok {
		e.Value.(*lruEntry).cert = cert
		c.order.MoveToFront(e)
		return
	}
	c.items[name] = c.order.PushFront(&lruEntry{name: name, cert: cert})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry).name)
	}
}

func (c *lru) len() int { return c.order.Len() }
