//go:build linux

package testutil

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSTTL is the TTL of the test DNS server's answers. It is short so caches
// in the code under test do not outlive a test by much.
const DNSTTL = 5

// DNSQuery is one query the test DNS server received.
type DNSQuery struct {
	Name    string         // as asked, e.g. "www.example.test."
	Type    string         // "A", "AAAA", … (dns.TypeToString)
	Network string         // "udp" or "tcp"
	Source  netip.AddrPort // the client, IPv4 unmapped
}

func (q DNSQuery) String() string {
	return fmt.Sprintf("%s %s over %s from %s", q.Name, q.Type, q.Network, q.Source)
}

// DNSRecorder records the queries of a test DNS server.
type DNSRecorder struct {
	port int

	mu      sync.Mutex
	queries []DNSQuery
}

// Port is the port the server listens on, over both UDP and TCP.
func (r *DNSRecorder) Port() int { return r.port }

// Queries returns the queries received so far, oldest first.
func (r *DNSRecorder) Queries() []DNSQuery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DNSQuery(nil), r.queries...)
}

func (r *DNSRecorder) record(q DNSQuery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
}

// ServeDNS serves DNS on UDP and TCP [::]:port inside the host's namespace
// (IPv4 too). Port 0 picks a port free for both. It answers A and AAAA
// queries for test. and every name under it with the host's IPv4 and IPv6,
// other types there with no records, and NXDOMAIN for names elsewhere. Every
// query is recorded, before it is answered. The servers stop when the test
// ends.
func (h *Host) ServeDNS(tb testing.TB, port int) *DNSRecorder {
	tb.Helper()
	pc, ln, err := h.listenDNS(port)
	if err != nil {
		tb.Fatalf("listen for dns in %s: %v", h.Name, err)
	}
	rec := &DNSRecorder{port: pc.LocalAddr().(*net.UDPAddr).Port}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		h.answerDNS(rec, w, req)
	})
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: handler},
		{Listener: ln, Handler: handler},
	} {
		// Shutdown fails on a server that has not started yet and leaves
		// it running, so wait for the start before handing out the
		// cleanup.
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
				log.Printf("testutil: serve dns in %s: %v", h.Name, err)
			}
		}()
		select {
		case <-started:
		case err := <-failed:
			pc.Close()
			ln.Close()
			tb.Fatalf("serve dns in %s: %v", h.Name, err)
		}
		tb.Cleanup(func() { srv.Shutdown() })
	}
	return rec
}

// listenDNS opens UDP and TCP sockets on the same port.
func (h *Host) listenDNS(port int) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		pc, err := h.listenPacket("udp", net.JoinHostPort("::", strconv.Itoa(port)))
		if err != nil {
			return nil, nil, err
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := h.listen("tcp", net.JoinHostPort("::", strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		// With port 0 the UDP port may just be taken for TCP; try another.
		if port != 0 || attempt == 10 {
			return nil, nil, err
		}
	}
}

func (h *Host) answerDNS(rec *DNSRecorder, w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	// It stands in for a recursive resolver, and dig warns without RA.
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	rec.record(DNSQuery{
		Name:    q.Name,
		Type:    dns.TypeToString[q.Qtype],
		Network: w.LocalAddr().Network(),
		Source:  addrPort(w.RemoteAddr()),
	})
	if !dns.IsSubDomain("test.", dns.CanonicalName(q.Name)) {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: DNSTTL}
	switch q.Qtype {
	case dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: h.IPv4.AsSlice()})
	case dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: h.IPv6.AsSlice()})
	}
	w.WriteMsg(m)
}

func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
