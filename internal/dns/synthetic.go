package dns

import (
	"crypto/rand"
	"net/netip"
	"strings"
	"sync"
)

// synthetic4 holds the addresses fake mode answers A queries with: the
// benchmarking range (RFC 2544), which no real host uses.
var synthetic4 = netip.MustParsePrefix("198.18.0.0/15")

// syntheticSize is how many names the table holds: every address of
// synthetic4 but the first and the last. A new name beyond that takes the
// address (and so the place) of the oldest one.
const syntheticSize = 1<<17 - 2

// Synthetic is fake mode's table: each name gets one IPv4 address from
// 198.18.0.0/15 and one IPv6 address from a ULA /64 chosen at random per
// jail, both stable for the table's life, and each address maps back to its
// name. It is safe for concurrent use.
type Synthetic struct {
	prefix6 [8]byte

	mu     sync.Mutex
	byName map[string]uint32 // name -> index (1..syntheticSize)
	byIdx  map[uint32]string
	next   uint32 // the index the next new name gets
}

// NewSynthetic makes an empty table with a fresh random ULA prefix.
func NewSynthetic() *Synthetic {
	s := &Synthetic{byName: map[string]uint32{}, byIdx: map[uint32]string{}, next: 1}
	s.prefix6[0] = 0xfd // RFC 4193: fd00::/8 with a random 40-bit global ID
	rand.Read(s.prefix6[1:6])
	return s
}

// Prefix6 is the /64 the table's IPv6 addresses come from.
func (s *Synthetic) Prefix6() netip.Prefix {
	var a [16]byte
	copy(a[:], s.prefix6[:])
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

func normalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// Addrs returns name's IPv4 and IPv6 addresses, giving it some if new.
func (s *Synthetic) Addrs(name string) (v4, v6 netip.Addr) {
	name = normalizeName(name)
	s.mu.Lock()
	idx, ok := s.byName[name]
	if !ok {
		idx = s.next
		s.next = s.next%syntheticSize + 1
		if old, taken := s.byIdx[idx]; taken {
			delete(s.byName, old) // the oldest name gives its place up
		}
		s.byName[name] = idx
		s.byIdx[idx] = name
	}
	s.mu.Unlock()
	return s.addrs(idx)
}

func (s *Synthetic) addrs(idx uint32) (netip.Addr, netip.Addr) {
	b4 := synthetic4.Addr().As4()
	v := uint32(b4[0])<<24 | uint32(b4[1])<<16 | uint32(b4[2])<<8 | uint32(b4[3])
	v += idx
	v4 := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	var a [16]byte
	copy(a[:], s.prefix6[:])
	a[12], a[13], a[14], a[15] = byte(idx>>24), byte(idx>>16), byte(idx>>8), byte(idx)
	return v4, netip.AddrFrom16(a)
}

// Name returns the name a synthetic address stands for; ok is false for
// an address the table did not hand out (or no longer holds).
func (s *Synthetic) Name(a netip.Addr) (name string, ok bool) {
	a = a.Unmap()
	var idx uint32
	switch {
	case synthetic4.Contains(a):
		b := a.As4()
		base := synthetic4.Addr().As4()
		idx = (uint32(b[1])-uint32(base[1]))<<16 | uint32(b[2])<<8 | uint32(b[3])
	case s.Prefix6().Contains(a):
		b := a.As16()
		if b[8]|b[9]|b[10]|b[11] != 0 {
			return "", false
		}
		idx = uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	default:
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok = s.byIdx[idx]
	return name, ok
}

// Contains reports whether a lies in one of the table's ranges, handed out
// or not: such an address is never dialed.
func (s *Synthetic) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return synthetic4.Contains(a) || s.Prefix6().Contains(a)
}
