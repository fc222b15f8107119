package dns

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
)

// synthetic4 holds the addresses fake mode answers A queries with: the
// benchmarking range (RFC 2544), which no real host uses.
var synthetic4 = netip.MustParsePrefix("198.18.0.0/15")

// syntheticSize is how many names the table holds: every address of
// synthetic4 but the first and the last.
const syntheticSize = 1<<17 - 2

// recycleScan bounds how many places a new name looks at for one that is
// free or idle: past that the pool counts as exhausted and the query
// fails, rather than a name still in use losing its address.
const recycleScan = 64

// Synthetic is fake mode's table: each name gets one IPv4 address from
// 198.18.0.0/15 and one IPv6 address from a ULA /64 chosen at random per
// jail, and each address maps back to its name. It is safe for concurrent
// use.
//
// An address goes to another name only once its name is idle: no
// connection to it open (Open) and its TTL passed since it was last
// answered. Until then the address keeps meaning its name, so one process
// cannot, by asking for many names, make an address another process holds
// (or has cached) stand for a name of its choosing. When every place is in
// use the table refuses new names (Addrs reports false).
type Synthetic struct {
	prefix6 [8]byte
	// size, ttl and now are syntheticSize, fakeTTL and time.Now but in
	// tests.
	size uint32
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	byName map[string]uint32 // name -> index (1..size)
	byIdx  map[uint32]*synName
	next   uint32 // the place the next new name looks at first
}

// synName is a name's place in the table.
type synName struct {
	name     string
	answered time.Time // last handed out in an answer
	open     int       // connections to its addresses being served
}

// NewSynthetic makes an empty table with a fresh random ULA prefix.
func NewSynthetic() *Synthetic {
	s := &Synthetic{byName: map[string]uint32{}, byIdx: map[uint32]*synName{}, next: 1,
		size: syntheticSize, ttl: fakeTTL * time.Second, now: time.Now}
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

// Addrs returns name's IPv4 and IPv6 addresses for an answer, giving it
// some if new; ok is false when the table has no idle place for a new
// name.
func (s *Synthetic) Addrs(name string) (v4, v6 netip.Addr, ok bool) {
	name = hostname.Fold(name)
	now := s.now()
	s.mu.Lock()
	idx, ok := s.byName[name]
	if ok {
		s.byIdx[idx].answered = now
	} else if idx, ok = s.place(now); ok {
		s.byName[name] = idx
		s.byIdx[idx] = &synName{name: name, answered: now}
	}
	s.mu.Unlock()
	if !ok {
		return netip.Addr{}, netip.Addr{}, false
	}
	v4, v6 = s.addrs(idx)
	return v4, v6, true
}

// place finds a free place, or frees an idle one, for a new name; s.mu is
// held.
func (s *Synthetic) place(now time.Time) (uint32, bool) {
	for range min(recycleScan, s.size) {
		idx := s.next
		s.next = s.next%s.size + 1
		old := s.byIdx[idx]
		if old == nil {
			return idx, true
		}
		if old.open == 0 && now.Sub(old.answered) >= s.ttl {
			delete(s.byName, old.name)
			delete(s.byIdx, idx)
			return idx, true
		}
	}
	return 0, false
}

// Open records a connection to the synthetic address a and returns the
// name it stands for and a function to call when the connection ends;
// while open, the address keeps its name. ok is false for an address the
// table does not hold.
func (s *Synthetic) Open(a netip.Addr) (name string, done func(), ok bool) {
	idx, ok := s.index(a)
	if !ok {
		return "", nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byIdx[idx]
	if e == nil {
		return "", nil, false
	}
	e.open++
	return e.name, sync.OnceFunc(func() {
		s.mu.Lock()
		e.open--
		s.mu.Unlock()
	}), true
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
	idx, ok := s.index(a)
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byIdx[idx]; e != nil {
		return e.name, true
	}
	return "", false
}

// index is the place a synthetic address stands for.
func (s *Synthetic) index(a netip.Addr) (uint32, bool) {
	a = a.Unmap()
	switch {
	case synthetic4.Contains(a):
		b := a.As4()
		base := synthetic4.Addr().As4()
		return (uint32(b[1])-uint32(base[1]))<<16 | uint32(b[2])<<8 | uint32(b[3]), true
	case s.Prefix6().Contains(a):
		b := a.As16()
		if b[8]|b[9]|b[10]|b[11] != 0 {
			return 0, false
		}
		return uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15]), true
	}
	return 0, false
}

// Contains reports whether a lies in one of the table's ranges, handed out
// or not: such an address is never dialed.
func (s *Synthetic) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return synthetic4.Contains(a) || s.Prefix6().Contains(a)
}
