package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// ebpfjail dials as root from the host's network namespace, where
// loopback-only services (databases, admin APIs, the container engine's
// TCP port) answer. A rule decides names, not addresses, so a name that
// resolves to the host itself (a wildcard DNS name, a rebinding answer, a
// hostile /etc/hosts-style entry) would carry an allowed request there. So
// a name never leads to a local address unless the operator said it may:
// a --resolve pin (the operator typed the address) or --allow-local-name.
// IP literals and "localhost" are what the rule saw, and stay its call.
// The check is on each address actually dialled, after resolution, so a
// second DNS answer or a multi-address answer changes nothing.

// localDestError refuses a name that resolved to the host itself.
type localDestError struct {
	host string
	addr netip.Addr
	why  string
}

func (e *localDestError) Error() string {
	return fmt.Sprintf("%s resolves to %s (%s): a name may not lead ebpfjail to this host itself", e.host, e.addr, e.why)
}

func (e *localDestError) hint() string {
	return fmt.Sprintf("if %s is meant to be a local service: --allow-local-name %s, or --resolve %s:%s", e.host, e.host, e.host, e.addr)
}

// markLocal turns e into the refusal of a local destination when err is
// one, and reports whether it was.
func markLocal(e *event.Event, err error) bool {
	var le *localDestError
	if !errors.As(err, &le) {
		return false
	}
	e.Verdict, e.Reason, e.Hint = event.Deny, "local destination: "+le.Error(), le.hint()
	return true
}

// mayBeLocal reports whether host may resolve to this host's own
// addresses: an IP literal or localhost (the rule saw it), a pinned name,
// or a name matching LocalNames.
func (r *Resolver) mayBeLocal(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	name := hostname.Normalize(host)
	if name == "localhost" {
		return true
	}
	if _, ok := r.Pins[name]; ok {
		return true
	}
	return matchesGlob(r.LocalNames, name)
}

// checkLocal refuses a, an address host resolved to, when it is this host
// itself: loopback, unspecified, link-local, multicast, broadcast, or one of
// its interfaces' addresses (or their IPv4 broadcast addresses).
func (r *Resolver) checkLocal(host string, a netip.Addr) error {
	if r.mayBeLocal(host) {
		return nil
	}
	a = a.Unmap()
	why := ""
	switch {
	case a.IsLoopback():
		why = "loopback"
	case a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0):
		why = "unspecified"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		why = "link-local"
	case a.IsMulticast():
		why = "multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "broadcast"
	default:
		own, err := r.ownPrefixes()
		if err != nil {
			why = "this host's addresses could not be listed: " + err.Error()
			break
		}
		for _, p := range own {
			if p.Addr() == a {
				why = "an address of this host"
				break
			}
			if p.Addr().Is4() && p.Bits() < 31 && a == lastAddr(p) {
				why = "a broadcast address of this host's networks"
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return &localDestError{host: hostname.Normalize(host), addr: a, why: why}
}

// ownPrefixes lists this host's interface addresses, afresh each time:
// interfaces come and go while a jail runs.
func (r *Resolver) ownPrefixes() ([]netip.Prefix, error) {
	if r.OwnAddrs != nil {
		return r.OwnAddrs()
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		bits, _ := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && bits > 32 {
			bits -= 96
		}
		out = append(out, netip.PrefixFrom(ip, bits))
	}
	return out, nil
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// refuseLocal answers a request whose name led to this host itself with
// ebpfjail's 403 and the reason, and reports whether it did.
func refuseLocal(w http.ResponseWriter, fw *forward, err error) bool {
	var le *localDestError
	if !errors.As(err, &le) {
		return false
	}
	if fw != nil {
		fw.local = le
	}
	writeText(w, http.StatusForbidden, blockedBody+le.Error()+"\n"+"hint: "+le.hint()+"\n")
	return true
}
