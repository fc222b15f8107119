package dns

import (
	"net/netip"
	"sync"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
)

// maxObserved bounds the address -> names record of forward mode, and
// maxNamesPerAddr the names kept per address: a wildcard domain answers
// any number of names with one address, and the jail picks the names.
const (
	maxObserved     = 16384
	maxNamesPerAddr = 16
)

// observed remembers which names forwarded answers gave which addresses,
// so a connection's address can be shown with the names the child resolved.
type observed struct {
	mu     sync.Mutex
	byAddr map[netip.Addr][]string
	order  []netip.Addr // insertion order, for eviction
}

func newObserved() *observed { return &observed{byAddr: map[netip.Addr][]string{}} }

func (o *observed) record(qname string, resp *dns.Msg) {
	name := hostname.Fold(qname)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rr := range resp.Answer {
		var a netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(r.AAAA)
		default:
			continue
		}
		if !a.IsValid() {
			continue
		}
		list, ok := o.byAddr[a]
		if !ok {
			if len(o.order) >= maxObserved {
				delete(o.byAddr, o.order[0])
				o.order = o.order[1:]
			}
			o.order = append(o.order, a)
		}
		// Most recent first, each name once, the oldest dropped.
		out := []string{name}
		for _, n := range list {
			if n != name && len(out) < maxNamesPerAddr {
				out = append(out, n)
			}
		}
		o.byAddr[a] = out
	}
}

func (o *observed) names(a netip.Addr) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.byAddr[a.Unmap()]...)
}

// firstAddr is the first A or AAAA of an answer, for the log.
func firstAddr(m *dns.Msg) string {
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			return r.A.String()
		case *dns.AAAA:
			return r.AAAA.String()
		}
	}
	return ""
}
