//go:build linux

package attack

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// CanaryV4 is the loopback address the canaries listen on: an address of
// 127/8 nothing else uses, so no real local service gets the attempts.
var CanaryV4 = netip.MustParseAddr("127.86.74.1")

// Hit is something that reached a canary.
type Hit struct {
	Canary string // "http", "udp", "dns", "unix", ...
	What   string // the request line, datagram, query name
}

// Canaries are the recording targets, outside the jail.
type Canaries struct {
	// Spec's target part is filled in: where the canaries listen.
	Spec Spec
	// DNSUpstream is where the jail's DNS shim should forward allowed
	// lookups: a canary too, so a forwarded denied name is seen.
	DNSUpstream netip.AddrPort
	// CACert is the PEM file of the CA that signed the HTTPS canary's
	// certificate (ebpfjail must trust it upstream, for the control).
	CACert string
	// Skipped says which canaries could not listen (a port taken).
	Skipped []string

	mu      sync.Mutex
	hits    []Hit
	closers []io.Closer
}

func (c *Canaries) record(canary, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hits = append(c.hits, Hit{canary, what})
}

// Hits returns everything that reached a canary so far.
func (c *Canaries) Hits() []Hit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Hit(nil), c.hits...)
}

// Close stops every canary.
func (c *Canaries) Close() {
	for _, cl := range c.closers {
		cl.Close()
	}
}

// StartCanaries starts the network canaries on CanaryV4 and ::1 (HTTP and
// HTTPS serving Decoy, UDP and QUIC recorders, DNS on port 53 where it is
// free, and a DNS upstream); dir holds the canaries' CA.
func StartCanaries(dir string) (*Canaries, error) {
	c := &Canaries{}
	c.Spec.V4, c.Spec.V6, c.Spec.DNS = CanaryV4, netip.IPv6Loopback(), 53
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	ca, err := tlsca.LoadOrCreate(filepath.Join(dir, "canary-ca"))
	if err != nil {
		return nil, fmt.Errorf("start canaries: %w", err)
	}
	c.CACert = filepath.Join(dir, "canary-ca.pem")
	if err := os.WriteFile(c.CACert, ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("start canaries: %w", err)
	}
	leaf, err := ca.Leaf(Decoy)
	if err != nil {
		return nil, fmt.Errorf("start canaries: %w", err)
	}
	tcp, err := c.pair("tcp")
	if err != nil {
		return nil, err
	}
	c.Spec.HTTP = c.serveHTTP(tcp, "http", nil)
	if tcp, err = c.pair("tcp"); err != nil {
		return nil, err
	}
	c.Spec.HTTPS = c.serveHTTP(tcp, "https", &tls.Config{Certificates: []tls.Certificate{*leaf}})
	for _, p := range []*uint16{&c.Spec.UDP, &c.Spec.QUIC} {
		pcs, err := c.pairPacket()
		if err != nil {
			return nil, err
		}
		*p = c.recordDatagrams(pcs, "udp")
	}
	// Port 53 may be taken (a local resolver): the DNS attempts still judge
	// the answers they get; this canary just watches where it can.
	for _, a := range []netip.Addr{c.Spec.V4, c.Spec.V6} {
		ap := netip.AddrPortFrom(a, 53)
		if err := c.serveDNS(ap); err != nil {
			c.Skipped = append(c.Skipped, fmt.Sprintf("dns on %s: %v", ap, err))
		}
	}
	up := netip.AddrPortFrom(c.Spec.V4, 0)
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(up))
	if err != nil {
		return nil, fmt.Errorf("start dns upstream canary: %w", err)
	}
	c.DNSUpstream = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.startDNS(&dns.Server{PacketConn: pc, Handler: c.dnsHandler("dns-upstream")})
	ok = true
	return c, nil
}

// pair listens on the same free port of both canary addresses.
func (c *Canaries) pair(network string) ([2]net.Listener, error) {
	var last error
	for try := 0; try < 20; try++ {
		l4, err := net.Listen(network+"4", netip.AddrPortFrom(c.Spec.V4, 0).String())
		if err != nil {
			return [2]net.Listener{}, fmt.Errorf("start canary: %w", err)
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen(network+"6", net.JoinHostPort(c.Spec.V6.String(), strconv.Itoa(port)))
		if err == nil {
			c.closers = append(c.closers, l4, l6)
			return [2]net.Listener{l4, l6}, nil
		}
		l4.Close()
		last = err
	}
	return [2]net.Listener{}, fmt.Errorf("start canary: no port free on both addresses: %w", last)
}

func (c *Canaries) pairPacket() ([2]net.PacketConn, error) {
	var last error
	for try := 0; try < 20; try++ {
		p4, err := net.ListenPacket("udp4", netip.AddrPortFrom(c.Spec.V4, 0).String())
		if err != nil {
			return [2]net.PacketConn{}, fmt.Errorf("start canary: %w", err)
		}
		port := p4.LocalAddr().(*net.UDPAddr).Port
		p6, err := net.ListenPacket("udp6", net.JoinHostPort(c.Spec.V6.String(), strconv.Itoa(port)))
		if err == nil {
			c.closers = append(c.closers, p4, p6)
			return [2]net.PacketConn{p4, p6}, nil
		}
		p4.Close()
		last = err
	}
	return [2]net.PacketConn{}, fmt.Errorf("start canary: no port free on both addresses: %w", last)
}

// serveHTTP answers every request 200 and records the first bytes each
// connection carries (after TLS, for HTTPS): what was asked, even when it
// was not HTTP.
func (c *Canaries) serveHTTP(lns [2]net.Listener, name string, tlsConf *tls.Config) uint16 {
	h := c.upgrading(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "canary\n")
	}))
	for _, ln := range lns {
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog}
		srv.SetKeepAlivesEnabled(false)
		c.closers = append(c.closers, srv)
		go srv.Serve(recordingListener{ln, func(b []byte) { c.record(name, string(b)) }})
	}
	return uint16(lns[0].Addr().(*net.TCPAddr).Port)
}

// recordingListener hands out connections that report their first read.
type recordingListener struct {
	net.Listener
	record func([]byte)
}

func (l recordingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: conn, record: l.record}, nil
}

type recordingConn struct {
	net.Conn
	record func([]byte)
	once   sync.Once
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() { c.record(b[:n]) })
	}
	return n, err
}

func (c *Canaries) recordDatagrams(pcs [2]net.PacketConn, name string) uint16 {
	for _, pc := range pcs {
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				c.record(name, string(buf[:n]))
			}
		}()
	}
	return uint16(pcs[0].LocalAddr().(*net.UDPAddr).Port)
}

// dnsHandler records each question and answers it with a marker address,
// so a client that gets an answer knows where from.
func (c *Canaries) dnsHandler(name string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			c.record(name, q.Name)
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   CanaryV4.AsSlice(),
				})
			}
		}
		w.WriteMsg(m)
	})
}

func (c *Canaries) serveDNS(ap netip.AddrPort) error {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		pc.Close()
		return err
	}
	c.startDNS(&dns.Server{PacketConn: pc, Handler: c.dnsHandler("dns")})
	c.startDNS(&dns.Server{Listener: ln, Handler: c.dnsHandler("dns")})
	return nil
}

func (c *Canaries) startDNS(srv *dns.Server) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	c.closers = append(c.closers, closerFunc(srv.Shutdown))
}

// UnixCanary listens on a unix socket at path, or at an abstract name
// ("@name") (any local user may connect:
// only the jail's rules may stop it) and records every connection.
func (c *Canaries) UnixCanary(path string) error {
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("start unix canary: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("start unix canary: %w", err)
	}
	if !abstract {
		os.Chmod(path, 0o777)
	}
	c.closers = append(c.closers, ln)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.SetReadDeadline(time.Now().Add(opTimeout))
			b, _ := io.ReadAll(io.LimitReader(conn, 256))
			conn.Close()
			c.record("unix "+path, string(b))
		}
	}()
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Attribute names the attempt a hit came from (by the tag each attempt puts
// in what it sends), "" for the controls, which must arrive, and "?" for
// a hit no attempt claims.
func Attribute(h Hit) string {
	for _, control := range []string{"GET /control-http ", "GET /control-https ", "GET " + UpgradePath + " "} {
		if strings.HasPrefix(h.What, control) && strings.Contains(strings.ToLower(h.What), "\r\nhost: "+Decoy+"\r\n") {
			return ""
		}
	}
	best := ""
	for _, a := range Attempts() {
		if strings.Contains(h.What, a.Name) && len(a.Name) > len(best) {
			best = a.Name
		}
	}
	if best == "" {
		return "?"
	}
	return best
}

// quietLog drops the canary servers' complaints (TLS from attempts that
// hang up): what matters is recorded as hits.
var quietLog = log.New(io.Discard, "", 0)
