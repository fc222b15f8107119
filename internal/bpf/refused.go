//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Refused is one attempt the kernel refused in the jail (or, for Op
// "inbound" and "dropped", a count of them), decoded for people: the names
// are those of pkg/event's refused events.
type Refused struct {
	Op       string // connect, sendmsg, socket, inbound, dropped
	Reason   string // which rule of the kernel programs refused it
	Family   string // inet, inet6, unix, packet, ... or the number
	SockType string // stream, dgram, raw, seqpacket, ... or the number
	Proto    string // tcp, udp, icmp, ... or the number; empty for 0
	Dst      string // address:port, a unix path or @name; inbound: the source
	Count    int    // attempts it stands for (1 but for repeats, inbound, dropped)

	// The process, as the kernel hooks record it at connect() (none for
	// inbound and dropped).
	PID, PPID, UID uint32
	Comm, Exe      string
}

// refusedSweep is how often repeats, inbound counts and the dropped
// counter are turned into events.
const refusedSweep = time.Second

// maxRepeats bounds the repeats counted between sweeps: past it, a new kind
// of attempt is reported on its own each time (the ring buffer bounds those).
const maxRepeats = 1024

// RefusedWatcher reads the refused ring buffer and the inbound counts of one
// loaded object. The first attempt of a kind (process, operation, family,
// type, protocol, destination) is reported at once; its repeats are summed
// and reported once per second, as one Refused with Count.
type RefusedWatcher struct {
	objs *Objects
	rd   *ringbuf.Reader
	rec  ringbuf.Record

	sockets link.Link // the socket() observer, when asked for

	closeOnce sync.Once
	closing   chan struct{}

	pending   []Refused
	repeats   map[Refused]int // a key has Count 1; the value counts repeats
	seen      map[Refused]bool
	inbound   map[jailInboundKey]uint64 // packets already reported per source
	dropped   uint64                    // refused_dropped already reported
	lastSweep time.Time
}

// WatchRefused starts reporting what the kernel refuses in the jail. Events
// wait in a 64 KiB kernel buffer (about 330) until Next reads them; beyond
// that they are counted and reported as one Refused with Op "dropped".
//
// With sockets, every socket() of the jail that fails with EPERM, EACCES or
// EAFNOSUPPORT is reported, also those refused before the jail's socket
// hook (an unprivileged raw or ICMP socket) or by the seccomp filter (other
// families), at a price: a syscall exit tracepoint puts every syscall of the
// host on its slow path while the watcher runs. Without it, only the
// sockets the hook itself refuses are reported. One watcher per Objects.
func (o *Objects) WatchRefused(sockets bool) (*RefusedWatcher, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refused {
		return nil, ErrRefusedWatched
	}
	rd, err := ringbuf.NewReader(o.objs.Refused)
	if err != nil {
		return nil, fmt.Errorf("open refused event buffer: %w", err)
	}
	w := &RefusedWatcher{
		objs: o, rd: rd, closing: make(chan struct{}),
		repeats: map[Refused]int{}, seen: map[Refused]bool{}, inbound: map[jailInboundKey]uint64{},
		lastSweep: time.Now(),
	}
	w.dropped, _ = o.statCount(statRefusedDropped)
	if sockets {
		if w.sockets, err = o.observeSockets(); err != nil {
			rd.Close()
			return nil, err
		}
	}
	if err := o.objs.RefusedEvents.Set(uint32(1)); err != nil {
		w.stopSockets()
		rd.Close()
		return nil, fmt.Errorf("refused events: switch on: %w", err)
	}
	o.refused = true
	return w, nil
}

// ErrRefusedWatched means the object already has a RefusedWatcher.
var ErrRefusedWatched = errors.New("bpf: refused events already watched")

// observeSockets attaches the socket() observer and silences the socket
// hook's own reports (one report per refusal).
func (o *Objects) observeSockets() (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: o.objs.JailSysExit, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return nil, fmt.Errorf("attach socket observer (tp_btf/sys_exit): %w", err)
	}
	if err := o.objs.SocketObserved.Set(uint32(1)); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket observer: %w", err)
	}
	return l, nil
}

// stopSockets detaches the socket() observer, if attached.
func (w *RefusedWatcher) stopSockets() error {
	if w.sockets == nil {
		return nil
	}
	err := w.sockets.Close()
	w.objs.objs.SocketObserved.Set(uint32(0))
	w.sockets = nil
	return err
}

// Next blocks until the next refused attempt or count. After Close it
// returns what is still buffered and counted, then ringbuf.ErrClosed.
// Call it from one goroutine.
func (w *RefusedWatcher) Next() (Refused, error) {
	for {
		if len(w.pending) > 0 {
			r := w.pending[0]
			w.pending = w.pending[1:]
			return r, nil
		}
		closing := false
		select {
		case <-w.closing:
			closing = true
			w.rd.SetDeadline(time.Now())
		default:
			w.rd.SetDeadline(time.Now().Add(execPoll))
		}
		err := w.rd.ReadInto(&w.rec)
		switch {
		case err == nil:
			if r, ok := w.decode(w.rec.RawSample); ok {
				w.add(r)
			}
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
			if closing {
				w.sweep()
				if len(w.pending) == 0 {
					w.rd.Close()
					w.objs.mu.Lock()
					w.objs.refused = false
					w.objs.mu.Unlock()
					return Refused{}, ringbuf.ErrClosed
				}
				continue
			}
			if time.Since(w.lastSweep) >= refusedSweep {
				w.sweep()
			}
		case errors.Is(err, ringbuf.ErrClosed):
			return Refused{}, ringbuf.ErrClosed
		default:
			return Refused{}, fmt.Errorf("read refused event: %w", err)
		}
	}
}

// Close stops the events; Next then drains what is buffered.
func (w *RefusedWatcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		if e := w.objs.objs.RefusedEvents.Set(uint32(0)); e != nil {
			err = fmt.Errorf("refused events: switch off: %w", e)
		}
		if e := w.stopSockets(); e != nil {
			err = errors.Join(err, fmt.Errorf("detach socket observer: %w", e))
		}
		close(w.closing)
		if e := w.rd.Flush(); e != nil && !errors.Is(e, os.ErrClosed) {
			err = errors.Join(err, fmt.Errorf("flush refused event buffer: %w", e))
		}
	})
	return err
}

// add queues r, or counts it when it repeats one already reported.
func (w *RefusedWatcher) add(r Refused) {
	if w.seen[r] {
		w.repeats[r]++
		return
	}
	if len(w.seen) < maxRepeats {
		w.seen[r] = true
	}
	w.pending = append(w.pending, r)
}

// sweep queues the repeats, the inbound packets and the events the kernel
// dropped since the last sweep.
func (w *RefusedWatcher) sweep() {
	w.lastSweep = time.Now()
	for r, n := range w.repeats {
		r.Count = n
		w.pending = append(w.pending, r)
	}
	clear(w.repeats)
	clear(w.seen)
	w.sweepInbound()
	if n, err := w.objs.statCount(statRefusedDropped); err == nil && n > w.dropped {
		w.pending = append(w.pending, Refused{Op: "dropped", Reason: "kernel event buffer full", Count: int(n - w.dropped)})
		w.dropped = n
	}
}

// sweepInbound reports each source whose packet count grew. The map is an
// LRU: a source evicted and seen again starts over, and is reported whole.
func (w *RefusedWatcher) sweepInbound() {
	var (
		k   jailInboundKey
		v   jailInboundCount
		now = map[jailInboundKey]uint64{}
	)
	it := w.objs.objs.InboundBySrc.Iterate()
	for it.Next(&k, &v) {
		now[k] = v.Packets
		prev := w.inbound[k]
		if v.Packets < prev {
			prev = 0
		}
		if v.Packets == prev {
			continue
		}
		r := Refused{
			Op: "inbound", Reason: "inbound from another host", Count: int(v.Packets - prev),
			Family: "inet6", Proto: protoName(afInet6, v.Proto),
		}
		addr := addrOf(k.Addr)
		if addr.Is4In6() {
			addr, r.Family = addr.Unmap(), "inet"
		}
		r.Dst = addr.String()
		w.pending = append(w.pending, r)
	}
	w.inbound = now
}

// statCount reads one of the per-CPU counters.
func (o *Objects) statCount(idx uint32) (uint64, error) {
	var per []uint64
	if err := o.objs.Stats.Lookup(idx, &per); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range per {
		sum += v
	}
	return sum, nil
}

// statRefusedDropped is STAT_REFUSED_DROPPED of enum stat_idx.
const statRefusedDropped = 14

var refusedEventSize = int(unsafe.Sizeof(jailRefusedEvent{}))

// decode reads a record; the process's exe comes from exe_by_exec.
func (w *RefusedWatcher) decode(raw []byte) (Refused, bool) {
	if len(raw) < refusedEventSize {
		return Refused{}, false
	}
	var e jailRefusedEvent
	if _, err := binary.Decode(raw, binary.NativeEndian, &e); err != nil {
		return Refused{}, false
	}
	r := Refused{
		Op: opName(e.Op), Reason: whyText(e.Why, e.Family, e.Path[0] == 0 && e.PathLen > 0),
		Family: familyName(e.Family), SockType: typeName(e.Type), Proto: protoName(e.Family, e.Proto),
		Count: 1, PID: e.Pid, PPID: e.Ppid, UID: e.Uid, Comm: cChars(e.Comm[:]),
	}
	if e.Exe.Ns != 0 {
		var pe jailProcExe
		if err := w.objs.objs.ExeByExec.Lookup(&e.Exe, &pe); err == nil {
			r.Exe = cChars(pe.Path[:])
		}
	}
	switch {
	case e.Op == refusedSocket: // no destination yet
	case e.Family == afInet || e.Family == afInet6:
		addr := addrOf(e.Addr)
		if addr.Is4In6() {
			addr = addr.Unmap()
		}
		r.Dst = netip.AddrPortFrom(addr, netPort(e.Port)).String()
	case e.Family == afUnix:
		r.Dst = unixName(e.Path[:min(int(e.PathLen), len(e.Path))])
	}
	return r, true
}

// netPort is a port the C side keeps in network order, read back.
func netPort(p uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], p)
	return binary.BigEndian.Uint16(b[:])
}

// addrOf is an address the C side keeps as four network-order __u32s.
func addrOf(w [4]uint32) netip.Addr {
	var a [16]byte
	for i, x := range w {
		binary.NativeEndian.PutUint32(a[i*4:], x)
	}
	return netip.AddrFrom16(a)
}

// unixName writes a unix address as ebpfjail's flags take it: a path, or
// @name for an abstract one (a NUL inside it as \0).
func unixName(b []int8) string {
	if len(b) == 0 {
		return ""
	}
	if b[0] != 0 {
		return cChars(b)
	}
	var out strings.Builder
	out.WriteByte('@')
	for _, c := range b[1:] {
		switch u := byte(c); {
		case u == 0:
			out.WriteString(`\0`)
		case u < 0x20 || u >= 0x7f:
			fmt.Fprintf(&out, `\x%02x`, u)
		default:
			out.WriteByte(u)
		}
	}
	return out.String()
}

const (
	afUnix  = 1
	afInet6 = 10
)

// enum refused_op.
const (
	refusedConnect = 1
	refusedSendmsg = 2
	refusedSocket  = 3
)

func opName(op uint16) string {
	switch op {
	case refusedConnect:
		return "connect"
	case refusedSendmsg:
		return "sendmsg"
	case refusedSocket:
		return "socket"
	}
	return "op" + strconv.Itoa(int(op))
}

// whyText is the reason of enum refused_why.
func whyText(why, family uint16, abstract bool) string {
	switch why {
	case 1:
		return "UDP is refused except DNS (port 53)"
	case 2:
		if family != afInet && family != afInet6 {
			return "socket refused"
		}
		return "only TCP and UDP sockets"
	case 3:
		if abstract {
			return "abstract unix socket not allowed"
		}
		return "unix socket on the deny list"
	case 5:
		return "socket family not allowed in the jail"
	}
	return "refused"
}

var familyNames = map[uint16]string{
	1: "unix", 2: "inet", 3: "ax25", 4: "ipx", 5: "appletalk", 9: "x25", 10: "inet6",
	16: "netlink", 17: "packet", 21: "rds", 29: "can", 30: "tipc", 31: "bluetooth",
	38: "alg", 40: "vsock", 44: "xdp", 45: "mctp",
}

func familyName(f uint16) string {
	if n, ok := familyNames[f]; ok {
		return n
	}
	return strconv.Itoa(int(f))
}

var typeNames = map[uint16]string{1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp", 10: "packet"}

func typeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return strconv.Itoa(int(t))
}

var inetProtos = map[uint16]string{
	1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 58: "icmpv6",
	132: "sctp", 136: "udplite", 255: "raw", 262: "mptcp",
}

// protoName names an inet protocol; other families' numbers stay numbers.
func protoName(family, p uint16) string {
	if p == 0 {
		return ""
	}
	if n, ok := inetProtos[p]; ok && (family == afInet || family == afInet6) {
		return n
	}
	return strconv.Itoa(int(p))
}
