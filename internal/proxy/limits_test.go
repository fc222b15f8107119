package proxy

import (
	"net/netip"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// TestRequestsOverTheInFlightBoundGet503: with every slot held, a request
// waits briefly and is answered 503, never decided nor forwarded; once the
// slot frees, requests go through again.
func TestRequestsOverTheInFlightBoundGet503(t *testing.T) {
	origin, seen := httpOrigin(t)
	k := &fakeKernel{}
	k.set(record{Dst: origin}, true)
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	p, err := Listen(Config{
		Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, MaxInFlight: 1,
		Resolver: &Resolver{Pins: map[string][]netip.Addr{}},
		Rules: ruleFunc(func(r *rules.Request) rules.Verdict {
			if r.Path == "/hold" {
				held <- struct{}{}
				<-hold
			}
			return rules.Verdict{Allow: true}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	first := make(chan int, 1)
	go func() {
		resp, _ := get(t, p, origin.String(), "/hold")
		first <- resp.StatusCode
	}()
	<-held
	resp, body := get(t, p, origin.String(), "/second")
	if resp.StatusCode != 503 || body != "Too many requests in flight through ebpfjail; try again\n" {
		t.Errorf("a request over the bound: got %d %q, want 503", resp.StatusCode, body)
	}
	close(hold)
	if got := <-first; got != 200 {
		t.Errorf("the held request: got %d, want 200", got)
	}
	if resp, _ := get(t, p, origin.String(), "/third"); resp.StatusCode != 200 {
		t.Errorf("after the slot freed: got %d, want 200", resp.StatusCode)
	}
	if seen.Load() != 2 {
		t.Errorf("origin saw %d requests, want 2 (not the refused one)", seen.Load())
	}
}
