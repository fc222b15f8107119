package dns

import (
	"net/netip"
	"strconv"
	"testing"
)

func TestSyntheticAddressesAreStableAndMapBack(t *testing.T) {
	s := NewSynthetic()
	a4, a6 := s.Addrs("Allowed.Test.")
	b4, b6 := s.Addrs("allowed.test")
	if a4 != b4 || a6 != b6 {
		t.Errorf("same name, different addresses: %v %v vs %v %v", a4, a6, b4, b6)
	}
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(a4) || !s.Prefix6().Contains(a6) {
		t.Errorf("addresses %v %v outside 198.18.0.0/15 and %v", a4, a6, s.Prefix6())
	}
	if p := s.Prefix6(); !netip.MustParsePrefix("fd00::/8").Contains(p.Addr()) || p == netip.MustParsePrefix("fd00::/64") {
		t.Errorf("prefix %v: want a random ULA /64 (not the machine's fd00::/64)", p)
	}
	for _, a := range []netip.Addr{a4, a6, netip.AddrFrom16(a4.As16())} {
		if n, ok := s.Name(a); !ok || n != "allowed.test" {
			t.Errorf("Name(%v): got %q, %v; want allowed.test", a, n, ok)
		}
	}
	c4, _ := s.Addrs("other.test")
	if c4 == a4 {
		t.Error("two names share an address")
	}
	if _, ok := s.Name(netip.MustParseAddr("198.19.200.1")); ok {
		t.Error("an address never handed out maps to a name")
	}
	if !s.Contains(netip.MustParseAddr("198.19.200.1")) || s.Contains(netip.MustParseAddr("203.0.113.1")) {
		t.Error("Contains: wrong range")
	}
}

func TestSyntheticTableIsBounded(t *testing.T) {
	s := NewSynthetic()
	first4, _ := s.Addrs("name-0.test")
	for i := 1; i <= syntheticSize; i++ {
		s.Addrs("name-" + strconv.Itoa(i) + ".test")
	}
	if len(s.byName) != syntheticSize || len(s.byIdx) != syntheticSize {
		t.Errorf("table size: got %d/%d, want %d", len(s.byName), len(s.byIdx), syntheticSize)
	}
	// The oldest name gave its address to the newest.
	if n, _ := s.Name(first4); n != "name-"+strconv.Itoa(syntheticSize)+".test" {
		t.Errorf("reused address maps to %q", n)
	}
}
