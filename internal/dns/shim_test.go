package dns

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

func TestListenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, cfg := range []Config{
		{Upstream: "127.0.0.1:53"},           // no logger
		{Upstream: "127.0.0.1", Logger: log}, // no port
		{Upstream: "", Logger: log},          // nothing
	} {
		if s, err := Listen(cfg); err == nil {
			s.Close()
			t.Errorf("Listen(%+v): got no error, want one", cfg)
		}
	}
}

func TestListenBindsLoopback(t *testing.T) {
	t.Parallel()
	s, _ := newShim(t, "127.0.0.1:53", nil, upstreamTimeout)
	v4, v6 := s.Ports()
	if v4 == 0 || v6 == 0 {
		t.Fatalf("Ports(): got %d, %d, want two ephemeral ports", v4, v6)
	}
}

func TestForwardUDP(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, rec := newShim(t, up.addr, nil, upstreamTimeout)
	a4, a6 := shimAddrs(s)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}

	for _, tc := range []struct {
		shim, name string
		qtype      uint16
	}{
		{a4, "v4.test.", dns.TypeA},
		{a6, "v6.test.", dns.TypeAAAA},
	} {
		q := newQuery(tc.name, tc.qtype)
		resp, _, err := c.Exchange(q, tc.shim)
		if err != nil {
			t.Fatalf("Exchange(%s via %s): %v", tc.name, tc.shim, err)
		}
		if resp.Id != q.Id || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("answer to %s: got id %d rcode %s answers %d, want id %d NOERROR 1 answer",
				tc.name, resp.Id, dns.RcodeToString[resp.Rcode], len(resp.Answer), q.Id)
		}
		if got, want := resp.Answer[0].Header().Rrtype, tc.qtype; got != want {
			t.Errorf("answer type: got %d, want %d", got, want)
		}
		l := rec.queryLog(t, tc.name)
		for k, want := range map[string]any{
			"type": dns.TypeToString[tc.qtype], "net": "udp", "rcode": "NOERROR",
			"answers": int64(1), "upstream": up.addr,
		} {
			if l[k] != want {
				t.Errorf("log %s: got %v, want %v", k, l[k], want)
			}
		}
		if _, ok := l["duration"].(time.Duration); !ok {
			t.Errorf("log duration: got %T, want time.Duration", l["duration"])
		}
		if _, ok := l["pid"]; ok {
			t.Errorf("log pid: got %v, want none without SocketOrigin", l["pid"])
		}
	}
	for _, q := range up.queries() {
		if q.net != "udp" {
			t.Errorf("upstream got %s over %s, want udp", q.name, q.net)
		}
	}
}

func TestForwardTCPLoopback(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, rec := newShim(t, up.addr, nil, upstreamTimeout)
	who := origin.Origin{
		Dst: netip.MustParseAddrPort("127.0.0.53:53"),
		PID: 4242, UID: 1000, Comm: "dig", Proto: 6,
	}

	// The proxy's role: accept and hand the connection over.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen(): %v", err)
	}
	defer l.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.ServeConn(c, who)
	}()

	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	co, err := c.Dial(l.Addr().String())
	if err != nil {
		t.Fatalf("Dial(): %v", err)
	}
	// Several queries on one connection.
	for _, name := range []string{"one.test.", "two.test.", "nx.test."} {
		q := newQuery(name, dns.TypeA)
		resp, _, err := c.ExchangeWithConn(q, co)
		if err != nil {
			t.Fatalf("ExchangeWithConn(%s): %v", name, err)
		}
		want := dns.RcodeSuccess
		if name == "nx.test." {
			want = dns.RcodeNameError
		}
		if resp.Rcode != want {
			t.Errorf("rcode of %s: got %s, want %s", name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[want])
		}
		lg := rec.queryLog(t, name)
		for k, want := range map[string]any{
			"net": "tcp", "pid": uint64(4242), "comm": "dig", "uid": uint64(1000),
			"server": "127.0.0.53:53", "rcode": dns.RcodeToString[want],
		} {
			if lg[k] != want {
				t.Errorf("log %s of %s: got %v (%T), want %v", k, name, lg[k], lg[k], want)
			}
		}
	}
	co.Close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
	for _, q := range up.queries() {
		if q.net != "tcp" {
			t.Errorf("upstream got %s over %s, want tcp", q.name, q.net)
		}
	}
}

// TestServeConnPipelined sends two queries before reading: both are answered
// on the connection, each with its own ID.
func TestServeConnPipelined(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, _ := newShim(t, up.addr, nil, upstreamTimeout)
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(server, origin.Origin{})
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))

	want := map[uint16]string{}
	var out []byte
	for _, name := range []string{"a.test.", "b.test."} {
		q := newQuery(name, dns.TypeA)
		want[q.Id] = name
		out = append(out, framed(mustPack(t, q))...)
	}
	go client.Write(out)
	co := &dns.Conn{Conn: client}
	for range want {
		resp, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("ReadMsg(): %v", err)
		}
		name, ok := want[resp.Id]
		if !ok || len(resp.Question) != 1 || resp.Question[0].Name != name {
			t.Fatalf("answer %d to %v: unexpected (want one of %v)", resp.Id, resp.Question, want)
		}
		delete(want, resp.Id)
	}
	client.Close()
	<-done
}

func TestServFailWhenUpstreamDead(t *testing.T) {
	t.Parallel()
	s, rec := newShim(t, deadUpstream(t), nil, upstreamTimeout)
	a4, _ := shimAddrs(s)

	q := newQuery("dead-udp.test.", dns.TypeA)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(q, a4)
	if err != nil {
		t.Fatalf("Exchange(): %v", err)
	}
	if resp.Rcode != dns.RcodeServerFailure || resp.Id != q.Id {
		t.Errorf("udp answer: got %s id %d, want SERVFAIL id %d", dns.RcodeToString[resp.Rcode], resp.Id, q.Id)
	}
	if l := rec.queryLog(t, "dead-udp.test."); l["rcode"] != "SERVFAIL" || l["error"] == nil {
		t.Errorf("log: got %v, want rcode SERVFAIL and an error", l)
	}

	resp = exchangePipe(t, s, newQuery("dead-tcp.test.", dns.TypeA))
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("tcp answer: got %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if l := rec.queryLog(t, "dead-tcp.test."); l["rcode"] != "SERVFAIL" || l["error"] == nil {
		t.Errorf("log: got %v, want rcode SERVFAIL and an error", l)
	}
}

func TestServFailWhenUpstreamSilent(t *testing.T) {
	t.Parallel()
	s, rec := newShim(t, blackholeUpstream(t), nil, 200*time.Millisecond)
	a4, _ := shimAddrs(s)

	start := time.Now()
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(newQuery("silent.test.", dns.TypeA), a4)
	if err != nil {
		t.Fatalf("Exchange(): %v", err)
	}
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("answer: got %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answer took %v, want about the 200ms timeout", d)
	}
	l := rec.queryLog(t, "silent.test.")
	if err, _ := l["error"].(error); !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("log error: got %v, want a timeout", l["error"])
	}

	resp = exchangePipe(t, s, newQuery("silent-tcp.test.", dns.TypeA))
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("tcp answer: got %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

// exchangePipe sends one query to ServeConn over a pipe.
func exchangePipe(t *testing.T, s *Shim, q *dns.Msg) *dns.Msg {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(server, origin.Origin{})
	}()
	defer func() {
		client.Close()
		<-done
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	co := &dns.Conn{Conn: client}
	if err := co.WriteMsg(q); err != nil {
		t.Fatalf("WriteMsg(): %v", err)
	}
	resp, err := co.ReadMsg()
	if err != nil {
		t.Fatalf("ReadMsg(): %v", err)
	}
	if resp.Id != q.Id {
		t.Fatalf("answer id: got %d, want %d", resp.Id, q.Id)
	}
	return resp
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, _ := newShim(t, up.addr, nil, upstreamTimeout)
	a4, _ := shimAddrs(s)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}

	// A client with a big buffer gets the whole answer over UDP.
	q := newQuery("big.test.", dns.TypeA)
	q.SetEdns0(4096, false)
	resp, _, err := c.Exchange(q, a4)
	if err != nil {
		t.Fatalf("Exchange(): %v", err)
	}
	if resp.Truncated || len(resp.Answer) != 100 {
		t.Errorf("answer with EDNS0 4096: got TC=%v %d answers, want TC=false 100", resp.Truncated, len(resp.Answer))
	}
	var nets []string
	for _, sq := range up.queries() {
		nets = append(nets, sq.net)
	}
	if got, want := strings.Join(nets, ","), "udp,tcp"; got != want {
		t.Errorf("upstream transports: got %s, want %s", got, want)
	}

	// A client without EDNS0 gets what fits in 512 bytes and TC, so that it
	// asks again over TCP.
	resp, _, err = c.Exchange(newQuery("big.test.", dns.TypeA), a4)
	if err != nil {
		t.Fatalf("Exchange(): %v", err)
	}
	if !resp.Truncated || len(resp.Answer) >= 100 {
		t.Errorf("answer without EDNS0: got TC=%v %d answers, want TC=true and fewer than 100", resp.Truncated, len(resp.Answer))
	}
	resp.Compress = true // as it was on the wire
	if n := resp.Len(); n > dns.MinMsgSize {
		t.Errorf("answer without EDNS0: %d bytes, want at most %d", n, dns.MinMsgSize)
	}
}

func TestGarbageUDP(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, _ := newShim(t, up.addr, nil, upstreamTimeout)
	a4, _ := shimAddrs(s)
	conn, err := net.Dial("udp", a4)
	if err != nil {
		t.Fatalf("net.Dial(): %v", err)
	}
	defer conn.Close()

	noQuestion := mustPack(t, &dns.Msg{MsgHdr: dns.MsgHdr{Id: 0xbeef}})
	badBody := mustPack(t, newQuery("cut.test.", dns.TypeA))
	badBody = badBody[:len(badBody)-3]
	badBody[0], badBody[1] = 0xca, 0xfe
	for _, junk := range [][]byte{
		{},
		{1, 2, 3},
		[]byte(strings.Repeat("\xff", 40)),
		noQuestion,
		badBody,
	} {
		if _, err := conn.Write(junk); err != nil {
			t.Fatalf("Write(): %v", err)
		}
	}
	// Of the junk, the two with a readable header get FORMERR.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	co := &dns.Conn{Conn: conn}
	got := map[uint16]int{}
	for range 2 {
		resp, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("ReadMsg(): %v", err)
		}
		got[resp.Id] = resp.Rcode
	}
	if got[0xbeef] != dns.RcodeFormatError || got[0xcafe] != dns.RcodeFormatError {
		t.Errorf("answers to malformed queries: got %v, want FORMERR for 0xbeef and 0xcafe", got)
	}

	// And the shim still answers.
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(newQuery("after.test.", dns.TypeA), a4)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("query after garbage: got %v, %v, want an answer", resp, err)
	}
	// The junk that reached the parser is counted (the empty datagram and
	// the accepted-then-refused header-only query may not be).
	if got := s.Malformed(); got < 2 {
		t.Errorf("Malformed(): got %d, want at least 2", got)
	}
}

func TestGarbageTCP(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, _ := newShim(t, up.addr, nil, upstreamTimeout)
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(server, origin.Origin{})
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))

	noQuestion := mustPack(t, &dns.Msg{MsgHdr: dns.MsgHdr{Id: 0xbeef}})
	badBody := mustPack(t, newQuery("cut.test.", dns.TypeA))
	badBody = badBody[:len(badBody)-3]
	badBody[0], badBody[1] = 0xca, 0xfe
	update := new(dns.Msg)
	update.SetUpdate("zone.test.")
	update.Id = 0xd00d
	response := newQuery("reply.test.", dns.TypeA)
	response.Response = true
	good := newQuery("after.test.", dns.TypeA)

	var out []byte
	for _, m := range [][]byte{
		{},                    // empty: skipped
		{1, 2, 3},             // shorter than a header: skipped
		noQuestion,            // FORMERR
		badBody,               // FORMERR
		mustPack(t, update),   // NOTIMP
		mustPack(t, response), // ignored
		mustPack(t, good),     // answered
	} {
		out = append(out, framed(m)...)
	}
	go client.Write(out)

	co := &dns.Conn{Conn: client}
	got := map[uint16]int{}
	for range 4 {
		resp, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("ReadMsg(): %v", err)
		}
		got[resp.Id] = resp.Rcode
	}
	want := map[uint16]int{
		0xbeef:  dns.RcodeFormatError,
		0xcafe:  dns.RcodeFormatError,
		0xd00d:  dns.RcodeNotImplemented,
		good.Id: dns.RcodeSuccess,
	}
	for id, rcode := range want {
		if got[id] != rcode {
			t.Errorf("answer %#x: got %s, want %s", id, dns.RcodeToString[got[id]], dns.RcodeToString[rcode])
		}
	}
	client.Close()
	<-done
}

// TestUDPAttribution checks that a UDP query is attributed to the process
// the kernel recorded for the client socket's cookie.
func TestUDPAttribution(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	cookies := make(chan uint64, 10)
	lookup := func(cookie uint64) (origin.Origin, error) {
		cookies <- cookie
		if cookie == 0 {
			return origin.Origin{}, errNoRecord
		}
		return origin.Origin{
			Dst: netip.MustParseAddrPort("127.0.0.53:53"),
			PID: 4242, UID: 1000, Comm: "resolver", Proto: 17,
		}, nil
	}
	s, rec := newShim(t, up.addr, lookup, upstreamTimeout)
	a4, a6 := shimAddrs(s)

	for _, tc := range []struct{ name, network, shim string }{
		{"attr4.test.", "udp4", a4},
		{"attr6.test.", "udp6", a6},
	} {
		raddr, err := net.ResolveUDPAddr(tc.network, tc.shim)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialUDP(tc.network, nil, raddr)
		if err != nil {
			t.Fatalf("net.DialUDP(): %v", err)
		}
		defer conn.Close()
		want := socketCookie(t, conn)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		co := &dns.Conn{Conn: conn}
		if err := co.WriteMsg(newQuery(tc.name, dns.TypeA)); err != nil {
			t.Fatalf("WriteMsg(): %v", err)
		}
		if _, err := co.ReadMsg(); err != nil {
			t.Fatalf("ReadMsg(): %v", err)
		}
		if got := <-cookies; got != want {
			t.Errorf("%s: SocketOrigin got cookie %d, want the client's %d", tc.network, got, want)
		}
		l := rec.queryLog(t, tc.name)
		for k, want := range map[string]any{
			"name": tc.name, "type": "A", "net": "udp",
			"pid": uint64(4242), "uid": uint64(1000), "comm": "resolver", "server": "127.0.0.53:53",
		} {
			if l[k] != want {
				t.Errorf("%s: log %s: got %v (%T), want %v", tc.network, k, l[k], l[k], want)
			}
		}
	}
}

// TestUDPUnknownProcess: a process the kernel has no record of is still
// answered, and logged without a pid.
func TestUDPUnknownProcess(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	s, rec := newShim(t, up.addr, func(uint64) (origin.Origin, error) {
		return origin.Origin{}, errNoRecord
	}, upstreamTimeout)
	a4, _ := shimAddrs(s)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(newQuery("unknown.test.", dns.TypeA), a4)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("Exchange(): got %v, %v, want an answer", resp, err)
	}
	if l := rec.queryLog(t, "unknown.test."); l["pid"] != nil {
		t.Errorf("log pid: got %v, want none", l["pid"])
	}
}

// TestCloseStopsEverything closes a shim with queries in flight over both
// transports and an idle TCP connection: Close returns promptly and no
// goroutine of the shim is left. Not parallel: it counts goroutines.
func TestCloseStopsEverything(t *testing.T) {
	rec := &logRecorder{}
	s, err := Listen(Config{Upstream: blackholeUpstream(t), Logger: slog.New(rec)})
	if err != nil {
		t.Fatalf("Listen(): %v", err)
	}
	a4, _ := shimAddrs(s)

	// A UDP query stuck on the silent upstream.
	conn, err := net.Dial("udp", a4)
	if err != nil {
		t.Fatalf("net.Dial(): %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write(mustPack(t, newQuery("stuck-udp.test.", dns.TypeA))); err != nil {
		t.Fatalf("Write(): %v", err)
	}

	// A TCP query stuck likewise, and an idle TCP connection.
	var served []chan struct{}
	var clients []net.Conn
	for _, q := range [][]byte{framed(mustPack(t, newQuery("stuck-tcp.test.", dns.TypeA))), nil} {
		client, server := net.Pipe()
		clients = append(clients, client)
		done := make(chan struct{})
		served = append(served, done)
		go func() {
			defer close(done)
			s.ServeConn(server, origin.Origin{PID: 1})
		}()
		go io.Copy(io.Discard, client)
		if q != nil {
			client.Write(q)
		}
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let both queries reach the upstream

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close(): %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v, want it prompt (upstream timeout is %v)", d, upstreamTimeout)
	}
	for _, done := range served {
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("ServeConn still running after Close")
		}
	}
	// Stuck queries were answered (SERVFAIL), not dropped.
	for _, name := range []string{"stuck-udp.test.", "stuck-tcp.test."} {
		if l := rec.queryLogs(name); len(l) != 1 || l[0]["rcode"] != "SERVFAIL" {
			t.Errorf("log of %s: got %v, want one SERVFAIL", name, l)
		}
	}
	// A connection handed over after Close is closed at once.
	client, server := net.Pipe()
	s.ServeConn(server, origin.Origin{})
	client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read from a connection served after Close: got %v, want EOF", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close(): %v", err)
	}
	waitNoShimGoroutines(t)
}
