package bpf

import (
	"net/netip"
	"testing"
	"unsafe"
)

// The Go mirror of bpf/jail.h must keep the C layout: a size change on one
// side only would make every lookup read garbage.
func TestStructSizesMatchC(t *testing.T) {
	if got, want := unsafe.Sizeof(jailOrigDst{}), uintptr(72); got != want {
		t.Errorf("sizeof(struct orig_dst): got %d, want %d", got, want)
	}
	if got, want := unsafe.Sizeof(jailProcExe{}), uintptr(264); got != want {
		t.Errorf("sizeof(struct proc_exe): got %d, want %d", got, want)
	}
	if got, want := unsafe.Sizeof(jailTupleKey{}), uintptr(20); got != want {
		t.Errorf("sizeof(struct tuple_key): got %d, want %d", got, want)
	}
	if got, want := unsafe.Sizeof(jailExecEvent{}), uintptr(804); got != want {
		t.Errorf("sizeof(struct exec_event): got %d, want %d", got, want)
	}
	if got, want := unsafe.Sizeof(jailRefusedEvent{}), uintptr(192); got != want {
		t.Errorf("sizeof(struct refused_event): got %d, want %d", got, want)
	}
	if got, want := unsafe.Offsetof(jailExecEvent{}.Args), uintptr(292); got != want {
		t.Errorf("offsetof(struct exec_event, args): got %d, want %d", got, want)
	}
}

func TestStatNamesCoverEveryCounter(t *testing.T) {
	spec, err := loadJail()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(statNames), int(spec.Maps["stats"].MaxEntries); got != want {
		t.Errorf("stat names: got %d, want %d (enum stat_idx in bpf/jail.h)", got, want)
	}
}

// The key and record round-trip in the byte orders the C side uses: address
// bytes in network order, tuple port in host order, record port in network order.
func TestOriginDecodesKernelByteOrder(t *testing.T) {
	for _, tc := range []struct {
		dst    string
		family uint16
	}{
		{"203.0.113.2:8080", afInet},
		{"[2001:db8:eb::2]:443", 10},
	} {
		want := netip.MustParseAddrPort(tc.dst)
		k := tupleKey(want) // same address layout as the record
		v := jailOrigDst{Addr: k.Addr, Family: tc.family, Pid: 42, Uid: 1000, Proto: 6}
		// network order port, as the kernel stores it in a __u16
		pb := []byte{byte(want.Port() >> 8), byte(want.Port())}
		v.Port = *(*uint16)(unsafe.Pointer(&pb[0]))
		copy8(&v.Comm, "curl")
		got := decodeOrigin(&v)
		if got.Dst != want || got.PID != 42 || got.UID != 1000 || got.Comm != "curl" || got.Proto != 6 {
			t.Errorf("decode %s: got %+v", tc.dst, got)
		}
	}
}

func TestTupleKeyMapsIPv4(t *testing.T) {
	k := tupleKey(netip.MustParseAddrPort("127.0.0.1:40000"))
	var b [16]byte
	for i, w := range k.Addr {
		*(*uint32)(unsafe.Pointer(&b[i*4])) = w
	}
	if got, want := netip.AddrFrom16(b), netip.MustParseAddr("::ffff:127.0.0.1"); got != want {
		t.Errorf("key address: got %v, want %v", got, want)
	}
	if k.Port != 40000 {
		t.Errorf("key port: got %d, want 40000 (host order)", k.Port)
	}
}

func copy8(dst *[16]int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}
