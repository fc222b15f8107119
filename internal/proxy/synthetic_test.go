package proxy

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/dns"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// A connection to a fake DNS address is for the name behind it: the rule
// sees the name, ebpfjail dials the name, never the stand-in address.
func TestSyntheticDestinationIsDecidedAndDialedByName(t *testing.T) {
	origin, seen := httpOrigin(t)
	syn := dns.NewSynthetic()
	fake4, _, _ := syn.Addrs("allowed.test")
	k := &fakeKernel{}
	var hosts []string
	p, err := Listen(Config{
		Logger:    testutil.DiscardLogger(),
		OrigDst:   k.OrigDst,
		Synthetic: syn,
		Resolver:  &Resolver{Pins: map[string][]netip.Addr{"allowed.test": {origin.Addr()}}},
		Rules: ruleFunc(func(r *rules.Request) rules.Verdict {
			hosts = append(hosts, r.Host)
			return rules.Verdict{Allow: r.Host == "allowed.test"}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	dst := netip.AddrPortFrom(fake4, origin.Port())
	k.set(record{Dst: dst}, true)
	port := strconv.Itoa(int(origin.Port()))
	for _, host := range []string{"allowed.test:" + port, fake4.String() + ":" + port} {
		resp, body := get(t, p, host, "/x")
		if resp.StatusCode != 200 || body != "hello /x" {
			t.Errorf("Host %s: got %d %q, want 200 from the origin", host, resp.StatusCode, body)
		}
	}
	if seen.Load() != 2 {
		t.Errorf("origin saw %d requests, want 2", seen.Load())
	}
	for _, h := range hosts {
		if h != "allowed.test" {
			t.Errorf("rule saw host %q, want allowed.test", h)
		}
	}
	// An address the table never handed out is not dialed.
	unknown := netip.AddrPortFrom(netip.MustParseAddr("198.19.1.1"), origin.Port())
	k.set(record{Dst: unknown}, true)
	p.cfg.Rules = rules.AllowAll()
	if resp, _ := get(t, p, unknown.String(), "/"); resp.StatusCode != 502 {
		t.Errorf("unknown stand-in address: got %d, want 502", resp.StatusCode)
	}
}

// countingNames is the real table, counting the connections the proxy
// holds open on its addresses.
type countingNames struct {
	*dns.Synthetic
	open atomic.Int32
}

func (c *countingNames) Open(a netip.Addr) (string, func(), bool) {
	name, done, ok := c.Synthetic.Open(a)
	if !ok {
		return name, done, ok
	}
	c.open.Add(1)
	return name, func() { c.open.Add(-1); done() }, true
}

// A connection to a fake DNS address holds its name for as long as it is
// served (so the table cannot give the address to another name meanwhile),
// and lets go when it ends.
func TestSyntheticDestinationIsHeldWhileTheConnectionIsOpen(t *testing.T) {
	origin, _ := httpOrigin(t)
	syn := &countingNames{Synthetic: dns.NewSynthetic()}
	fake4, _, _ := syn.Addrs("allowed.test")
	k := &fakeKernel{}
	k.set(record{Dst: netip.AddrPortFrom(fake4, origin.Port())}, true)
	var during atomic.Int32
	p, err := Listen(Config{
		Logger:    testutil.DiscardLogger(),
		OrigDst:   k.OrigDst,
		Synthetic: syn,
		Resolver:  &Resolver{Pins: map[string][]netip.Addr{"allowed.test": {origin.Addr()}}},
		Rules: ruleFunc(func(r *rules.Request) rules.Verdict {
			during.Store(syn.open.Load())
			return rules.Verdict{Allow: true}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if resp, _ := get(t, p, "allowed.test", "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	if got := during.Load(); got != 1 {
		t.Errorf("connections holding the name while the request was decided: got %d, want 1", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syn.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := syn.open.Load(); got != 0 {
		t.Errorf("connections holding the name after it closed: got %d, want 0", got)
	}
}
