package dns

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func answer(name string, a netip.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IP(a.AsSlice())}}
	return m
}

// A jailed process picks the names it resolves: neither the names of one
// address (a wildcard domain) nor the addresses may grow without bound.
func TestObservedNamesAreBounded(t *testing.T) {
	o := newObserved()
	shared := netip.MustParseAddr("203.0.113.7")
	for i := range 10 * maxNamesPerAddr {
		o.record(fmt.Sprintf("n%d.wild.test.", i), answer(fmt.Sprintf("n%d.wild.test.", i), shared))
	}
	names := o.names(shared)
	if len(names) != maxNamesPerAddr || names[0] != fmt.Sprintf("n%d.wild.test", 10*maxNamesPerAddr-1) {
		t.Errorf("names of one address: got %d starting %q, want the %d most recent", len(names), names[0], maxNamesPerAddr)
	}
	for i := range maxObserved + 100 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		o.record("x.test.", answer("x.test.", a))
	}
	if got := len(o.byAddr); got != maxObserved {
		t.Errorf("addresses kept: got %d, want the bound %d", got, maxObserved)
	}
	if len(o.names(shared)) != 0 {
		t.Error("the oldest address was not the one evicted")
	}
}
