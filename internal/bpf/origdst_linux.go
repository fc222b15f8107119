package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

// ErrNoOrigDst means the kernel has no record for a peer: the connection did
// not come from the jail (or its record was already taken).
var ErrNoOrigDst = errors.New("bpf: no original destination for peer")

// Origin is the kernel's record of a jailed connection (package origin
// holds the type, so that its consumers need not link this loader).
type Origin = origin.Origin

// Lookup retries: the sockops callback fills the map before the client's
// final ACK, so a miss is practically impossible (none in ~36,000 connections
// from 64 workers when this was measured), but a short retry costs nothing and closes the race for
// good.
const (
	lookupTries = 50
	lookupWait  = 100 * time.Microsecond
)

// OrigDst returns, and forgets, the record for the accepted connection whose
// client end is peer. It returns ErrNoOrigDst when there is none.
func (o *Objects) OrigDst(peer netip.AddrPort) (Origin, error) {
	k := tupleKey(peer)
	var v jailOrigDst
	for i := 0; ; i++ {
		err := o.objs.OrigByTuple.LookupAndDelete(&k, &v)
		if err == nil {
			return o.origin(&v), nil
		}
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return Origin{}, fmt.Errorf("look up original destination of %s: %w", peer, err)
		}
		if i+1 == lookupTries {
			return Origin{}, fmt.Errorf("look up original destination of %s: %w", peer, ErrNoOrigDst)
		}
		time.Sleep(lookupWait)
	}
}

// SocketOrigin returns the record of a jailed socket by its cookie (the DNS
// shim finds the cookie of a UDP client with sock_diag).
func (o *Objects) SocketOrigin(cookie uint64) (Origin, error) {
	var v jailOrigDst
	if err := o.objs.OrigByCookie.Lookup(&cookie, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Origin{}, ErrNoOrigDst
		}
		return Origin{}, fmt.Errorf("look up socket %d: %w", cookie, err)
	}
	return o.origin(&v), nil
}

// origin decodes a record and adds the path of the exec it names.
func (o *Objects) origin(v *jailOrigDst) Origin {
	who := decodeOrigin(v)
	if v.Exe.Ns == 0 {
		return who
	}
	var pe jailProcExe
	if err := o.objs.ExeByExec.Lookup(&v.Exe, &pe); err != nil {
		who.ExeFrom = origin.ExeForgotten
		return who
	}
	who.Exe, who.ExeTruncated, who.ExeFrom = cChars(pe.Path[:]), pe.Truncated != 0, origin.ExeKernel
	return who
}

// tupleKey builds the orig_by_tuple key for a client end: the address as
// IPv6 (IPv4 v4-mapped) in network byte order, the port in host order.
func tupleKey(peer netip.AddrPort) jailTupleKey {
	var k jailTupleKey
	a := peer.Addr().As16()
	for i := range k.Addr {
		// The C side stores network-order bytes in __u32s; read them the way
		// this CPU lays out a __u32.
		k.Addr[i] = binary.NativeEndian.Uint32(a[i*4:])
	}
	k.Port = peer.Port()
	return k
}

const afInet = 2

func decodeOrigin(v *jailOrigDst) Origin {
	var a [16]byte
	for i, w := range v.Addr {
		binary.NativeEndian.PutUint32(a[i*4:], w)
	}
	addr := netip.AddrFrom16(a)
	if v.Family == afInet {
		addr = addr.Unmap()
	}
	var p [2]byte
	binary.NativeEndian.PutUint16(p[:], v.Port)
	return Origin{
		Dst:   netip.AddrPortFrom(addr, binary.BigEndian.Uint16(p[:])),
		PID:   v.Pid,
		PPID:  v.Ppid,
		UID:   v.Uid,
		Comm:  cChars(v.Comm[:]),
		Proto: uint8(v.Proto),
	}
}

// cChars returns the bytes of a NUL-terminated C char array.
func cChars(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// statNames follow enum stat_idx in bpf/jail.h.
var statNames = []string{
	"tcp_redirected", "dns_redirected", "udp_denied", "socket_denied", "record_failed",
	"tuple_filled", "tuple_without_record", "peer_rewritten", "reply_rewritten",
	"exec_dropped", "unix_denied", "unix_guard_denied", "inbound_dropped",
	"exe_unknown", "refused_dropped",
}

// Stats sums the kernel side's per-CPU counters by name.
func (o *Objects) Stats() (map[string]uint64, error) {
	out := make(map[string]uint64, len(statNames))
	for i, name := range statNames {
		var per []uint64
		if err := o.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("read counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	return out, nil
}
