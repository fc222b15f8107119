package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// hostRule allows exactly one name.
type hostRule string

func (h hostRule) Evaluate(_ context.Context, r *rules.Request) rules.Verdict {
	if r.Scheme != "dns" || r.Method != "QUERY" || r.Port != 53 {
		return rules.Verdict{Reason: "unexpected request " + r.URL}
	}
	return rules.Verdict{Allow: r.Host == string(h), Reason: "rule"}
}
func (hostRule) Close() error { return nil }

func newModeShim(t *testing.T, cfg Config) (*Shim, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	cfg.Logger = slog.New(rec)
	s, err := listen(cfg, upstreamTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func TestFakeModeAnswersFromTheTableAndForwardsNothing(t *testing.T) {
	up := startUpstream(t)
	fake := NewSynthetic()
	s, rec := newModeShim(t, Config{Upstream: up.addr, Fake: fake})
	a4, _ := shimAddrs(s)
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		want4, want6, _ := fake.Addrs("secret.exfil.test")
		for qtype, want := range map[uint16]netip.Addr{dns.TypeA: want4, dns.TypeAAAA: want6} {
			var resp *dns.Msg
			var err error
			if network == "udp" {
				resp, _, err = c.Exchange(newQuery("secret.exfil.test.", qtype), a4)
			} else {
				resp = exchangePipe(t, s, newQuery("secret.exfil.test.", qtype))
			}
			if err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
				t.Fatalf("%s %s: got %v, %v", network, dns.TypeToString[qtype], resp, err)
			}
			var got netip.Addr
			switch rr := resp.Answer[0].(type) {
			case *dns.A:
				got, _ = netip.AddrFromSlice(rr.A.To4())
			case *dns.AAAA:
				got, _ = netip.AddrFromSlice(rr.AAAA)
			}
			if got != want {
				t.Errorf("%s %s: got %v, want %v", network, dns.TypeToString[qtype], got, want)
			}
		}
	}
	for _, qtype := range []uint16{dns.TypeHTTPS, dns.TypeTXT, dns.TypeMX} {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		resp, _, err := c.Exchange(newQuery("secret.exfil.test.", qtype), a4)
		if err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
			t.Errorf("%s: got %v, %v; want an empty NOERROR", dns.TypeToString[qtype], resp, err)
		}
	}
	if q := up.queries(); len(q) != 0 {
		t.Errorf("fake mode forwarded %v", q)
	}
	if l := rec.queryLogs("secret.exfil.test."); len(l) != 7 || l[0]["answer"] == nil {
		t.Errorf("log: got %v, want 7 lines, the first with its answer", l)
	}
}

func TestForwardModeAsksTheRulePerName(t *testing.T) {
	up := startUpstream(t)
	s, rec := newModeShim(t, Config{Upstream: up.addr, Rules: hostRule("allowed.test")})
	a4, _ := shimAddrs(s)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	ok, _, err := c.Exchange(newQuery("allowed.test.", dns.TypeA), a4)
	if err != nil || ok.Rcode != dns.RcodeSuccess || len(ok.Answer) != 1 {
		t.Fatalf("allowed: got %v, %v", ok, err)
	}
	resp, _, err := c.Exchange(newQuery("secret.exfil.test.", dns.TypeA), a4)
	if err != nil || resp.Rcode != dns.RcodeNameError {
		t.Fatalf("denied: got %v, %v; want NXDOMAIN", resp, err)
	}
	for _, q := range up.queries() {
		if q.name != "allowed.test." {
			t.Errorf("upstream saw %q, want only allowed.test.", q.name)
		}
	}
	if l := rec.queryLog(t, "secret.exfil.test."); l["verdict"] != "-" || l["upstream"] != nil {
		t.Errorf("denied log: got %v, want verdict - and no upstream", l)
	}
	// The answer is remembered: its address maps back to the name.
	a, _ := netip.AddrFromSlice(ok.Answer[0].(*dns.A).A.To4())
	if got := s.Names(a); len(got) != 1 || got[0] != "allowed.test" {
		t.Errorf("Names(%v): got %v, want [allowed.test]", a, got)
	}
}
