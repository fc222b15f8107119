package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

// errNoRecord is a fake kernel's answer for a socket it has no record of.
var errNoRecord = errors.New("no record for socket")

// testUpstream is a resolver on 127.0.0.1 serving UDP and TCP on one port.
// It answers A with 127.0.0.7 and AAAA with ::1; "big.test." is truncated
// over UDP and has 100 A records over TCP; "nx.test." is NXDOMAIN.
type testUpstream struct {
	addr string

	mu   sync.Mutex
	seen []seenQuery
}

type seenQuery struct {
	name, net string
	id        uint16
}

func startUpstream(tb testing.TB) *testUpstream {
	tb.Helper()
	u := &testUpstream{}
	pc, l := listenBoth(tb)
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: u},
		{Listener: l, Handler: u},
	} {
		startServer(tb, srv)
	}
	return u
}

// listenBoth binds UDP and TCP on the same loopback port.
func listenBoth(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("net.ListenPacket(): %v", err)
		}
		l, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the port is taken for TCP: try another
		}
		return pc, l
	}
	tb.Fatal("found no port free for both UDP and TCP")
	return nil, nil
}

func startServer(tb testing.TB, srv *dns.Server) {
	tb.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		tb.Fatalf("start test dns server: %v", err)
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
}

func (u *testUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	network := w.LocalAddr().Network()
	q := r.Question[0]
	u.mu.Lock()
	u.seen = append(u.seen, seenQuery{name: q.Name, net: network, id: r.Id})
	u.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(r)
	switch {
	case q.Name == "big.test." && network == "udp":
		m.Truncated = true
	case q.Name == "big.test.":
		for i := range 100 {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 1, byte(i)),
			})
		}
	case q.Name == "nx.test.":
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(127, 0, 0, 7),
		})
	case q.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{
			Hdr:  dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60},
			AAAA: net.IPv6loopback,
		})
	}
	w.WriteMsg(m)
}

func (u *testUpstream) queries() []seenQuery {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenQuery(nil), u.seen...)
}

// deadUpstream returns a loopback address where nothing listens, over UDP or
// TCP: exchanges fail at once (ICMP port unreachable, RST).
func deadUpstream(tb testing.TB) string {
	tb.Helper()
	pc, l := listenBoth(tb)
	addr := pc.LocalAddr().String()
	pc.Close()
	l.Close()
	return addr
}

// blackholeUpstream returns a loopback address that takes queries over UDP
// and TCP and never answers.
func blackholeUpstream(tb testing.TB) string {
	tb.Helper()
	pc, l := listenBoth(tb)
	tb.Cleanup(func() {
		pc.Close()
		l.Close()
	})
	return pc.LocalAddr().String()
}

// logRecorder is a slog.Handler that keeps every record's attributes.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]any{"msg": rec.Message, "level": rec.Level}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Resolve().Any()
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, m)
	r.mu.Unlock()
	return nil
}

// queryLogs returns the "dns query" records of name.
func (r *logRecorder) queryLogs(name string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, m := range r.recs {
		if m["msg"] == "dns query" && m["name"] == name {
			out = append(out, m)
		}
	}
	return out
}

func (r *logRecorder) queryLog(t *testing.T, name string) map[string]any {
	t.Helper()
	logs := r.queryLogs(name)
	if len(logs) != 1 {
		t.Fatalf("log records for %s: got %d, want 1: %v", name, len(logs), logs)
	}
	return logs[0]
}

// newShim starts a shim logging to a recorder, closed at the end of the test.
func newShim(tb testing.TB, upstream string, origin func(uint64) (origin.Origin, error), timeout time.Duration) (*Shim, *logRecorder) {
	tb.Helper()
	rec := &logRecorder{}
	s, err := listen(Config{Upstream: upstream, Logger: slog.New(rec), SocketOrigin: origin}, timeout)
	if err != nil {
		tb.Fatalf("Listen(): %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close(): %v", err)
		}
	})
	return s, rec
}

func shimAddrs(s *Shim) (v4, v6 string) {
	p4, p6 := s.Ports()
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p4).String(),
		netip.AddrPortFrom(netip.IPv6Loopback(), p6).String()
}

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// framed prefixes a DNS message with its length, as DNS over TCP sends it.
func framed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

func mustPack(tb testing.TB, m *dns.Msg) []byte {
	tb.Helper()
	b, err := m.Pack()
	if err != nil {
		tb.Fatalf("Pack(): %v", err)
	}
	return b
}

// shimGoroutines returns the stacks of goroutines running shim or miekg/dns
// server code.
func shimGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/dns.(*Shim)") || strings.Contains(g, "miekg/dns.(*Server)") {
			out = append(out, g)
		}
	}
	return out
}

func waitNoShimGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := shimGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
