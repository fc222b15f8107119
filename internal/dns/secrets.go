package dns

import (
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/hostname"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// refuseMisuse answers NXDOMAIN to a query whose name carries secret's
// placeholder (an exfiltration by lookup: the name would reach a resolver
// the exfiltrator watches, fake mode included, as nothing is looked up
// but the attempt is as telling), and records a secret_misuse event.
func (s *Shim) refuseMisuse(q *query, name, secret string) *dns.Msg {
	q.verdict, q.reason = "-", "secret_misuse: "+secret+" in the name"
	if s.events != nil {
		e := event.Event{
			V: event.Version, Type: event.TypeSecretMisuse, Time: time.Now().UTC(),
			Verdict: event.Deny, Reason: "placeholder of " + secret + " in a DNS name",
			Scheme: "dns", Name: hostname.Fold(name), Secret: secret, Where: "dns",
		}
		if q.known {
			e.PID, e.PPID, e.UID, e.Comm, e.Exe = q.who.PID, q.who.PPID, q.who.UID, q.who.Comm, q.who.Exe
		}
		s.events(e)
	}
	m := new(dns.Msg)
	m.SetRcode(q.msg, dns.RcodeNameError)
	return m
}
