package dns

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestSyntheticAddressesAreStableAndMapBack(t *testing.T) {
	s := NewSynthetic()
	a4, a6, _ := s.Addrs("Allowed.Test.")
	b4, b6, _ := s.Addrs("allowed.test")
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
	c4, _, _ := s.Addrs("other.test")
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

// clock is a settable time for the table.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func smallTable(size uint32) (*Synthetic, *clock) {
	s := NewSynthetic()
	c := &clock{t: time.Unix(1e9, 0)}
	s.size, s.now = size, c.now
	return s, c
}

func TestSyntheticTableIsBoundedAndRefusesRatherThanSteal(t *testing.T) {
	s, _ := smallTable(8)
	first4, _, _ := s.Addrs("name-0.test")
	for i := 1; i < 8; i++ {
		if _, _, ok := s.Addrs("name-" + strconv.Itoa(i) + ".test"); !ok {
			t.Fatalf("name %d of 8 refused", i)
		}
	}
	// Full, and every name answered less than a TTL ago.
	if _, _, ok := s.Addrs("intruder.test"); ok {
		t.Error("a ninth name got an address while all eight names were live")
	}
	if n, _ := s.Name(first4); n != "name-0.test" {
		t.Errorf("the first address now maps to %q, want name-0.test still", n)
	}
	if len(s.byName) != 8 || len(s.byIdx) != 8 {
		t.Errorf("table size: got %d/%d, want 8", len(s.byName), len(s.byIdx))
	}
}

func TestSyntheticAddressIsRecycledOnlyWhenIdle(t *testing.T) {
	s, c := smallTable(2)
	a4, _, _ := s.Addrs("victim.test")
	b4, _, _ := s.Addrs("other.test")
	// victim.test has a connection open; other.test is answered again.
	name, done, ok := s.Open(a4)
	if !ok || name != "victim.test" {
		t.Fatalf("Open(%v): got %q, %v; want victim.test", a4, name, ok)
	}
	c.t = c.t.Add(s.ttl)
	s.Addrs("other.test")
	// victim.test's TTL passed but its connection is open; other.test was
	// just answered: nothing is idle.
	if _, _, ok := s.Addrs("attacker.test"); ok {
		t.Error("a new name took the place of a name in use")
	}
	for a, want := range map[netip.Addr]string{a4: "victim.test", b4: "other.test"} {
		if n, _ := s.Name(a); n != want {
			t.Errorf("Name(%v): got %q, want %q", a, n, want)
		}
	}
	// The connection ends: victim.test is idle now and its place goes.
	done()
	done() // twice is once
	got4, _, ok := s.Addrs("attacker.test")
	if !ok || got4 != a4 {
		t.Errorf("after victim.test went idle: got %v, %v; want its address %v", got4, ok, a4)
	}
	if n, _ := s.Name(a4); n != "attacker.test" {
		t.Errorf("the recycled address maps to %q, want attacker.test", n)
	}
	if _, ok := s.byName["victim.test"]; ok {
		t.Error("the recycled name is still in the table")
	}
	// Asked again, victim.test gets a place of its own when one is idle.
	c.t = c.t.Add(s.ttl)
	if v4, _, ok := s.Addrs("victim.test"); !ok || v4 != b4 {
		t.Errorf("victim.test again: got %v, %v; want other.test's idle address %v", v4, ok, b4)
	}
	if _, _, ok := s.Open(netip.MustParseAddr("198.19.200.1")); ok {
		t.Error("Open of an address never handed out succeeded")
	}
}
