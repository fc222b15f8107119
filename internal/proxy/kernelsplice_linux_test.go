package proxy

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// splicedTimeoutProxy is timeoutProxy (--tcp) with the kernel splice; joins
// counts the tunnels joined in it.
func splicedTimeoutProxy(t *testing.T, dst netip.AddrPort, joins *atomic.Int64) *Proxy {
	t.Helper()
	testutil.RequireRoot(t)
	s, err := bpf.LoadSplicer()
	if err != nil {
		t.Fatalf("LoadSplicer: %v", err)
	}
	k := &fakeKernel{}
	k.set(record{Dst: dst, PID: 1, Comm: "test"}, true)
	p, err := Listen(Config{
		PeekTimeout: short.Header,
		Timeouts:    short,
		Logger:      testutil.DiscardLogger(),
		OrigDst:     k.OrigDst,
		Rules:       rules.AllowAll(),
		TCP:         true,
		Splice: func(client, up *net.TCPConn) (SplicedPair, error) {
			pair, err := s.Join(client, up)
			if err != nil {
				return nil, err
			}
			joins.Add(1)
			return pair, nil
		},
	})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); s.Close() })
	return p
}

func TestPrivilegedKernelSplicedTunnelIsClosedWhenIdleAndNotWhenBusy(t *testing.T) {
	var joins atomic.Int64
	checkTunnelIdle(t, func(origin netip.AddrPort) *Proxy { return splicedTimeoutProxy(t, origin, &joins) })
	if n := joins.Load(); n != 2 {
		t.Errorf("tunnels joined in the kernel splice: got %d, want 2 (the idle one and the busy one)", n)
	}
}
