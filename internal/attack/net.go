//go:build linux

package attack

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// opTimeout bounds each network step of an attempt. ebpfjail answers a
// denied request at once, so waiting longer only hides a leak's silence.
const opTimeout = 3 * time.Second

// denyBody is how ebpfjail's own 403 begins.
const denyBody = "Request blocked by ebpfjail"

// sockaddr is the kernel form of ap (an IPv4-mapped address stays IPv6).
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// fileConn turns a connected socket into a net.Conn (fd is consumed).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "attack")
	defer f.Close()
	return net.FileConn(f)
}

// rawDial connects a socket of ap's family with connect(2) itself, so an
// IPv4-mapped address goes out of an AF_INET6 socket as written.
func rawDial(ap netip.AddrPort) (net.Conn, error) {
	fd, err := unix.Socket(family(ap), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	tv := unix.NsecToTimeval(opTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, sockaddr(ap)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect %s: %w", ap, err)
	}
	return fileConn(fd)
}

func dial(ap netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: opTimeout}
	return d.Dial("tcp", ap.String())
}

// tlsDial connects and handshakes with sni. The attacker does not care
// whose certificate it gets (ebpfjail's, when it intercepts).
func tlsDial(ap netip.AddrPort, sni string) (net.Conn, error) {
	c, err := dial(ap)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	tc.SetDeadline(time.Now().Add(opTimeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// toTarget connects to the target's IPv4 address: to its HTTPS port, with
// TLS for sni, or, with sni "", to its HTTP port in clear text.
func toTarget(s Spec, sni string) (net.Conn, error) {
	if sni == "" {
		return dial(netip.AddrPortFrom(s.V4, s.HTTP))
	}
	return tlsDial(netip.AddrPortFrom(s.V4, s.HTTPS), sni)
}

// get is a raw HTTP/1.1 request for path with Host host; raw so that the
// attempts can say things a client library would not.
func get(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

// exchange sends req on c and judges the answer from the client's side.
// Blocked: the connection was refused or closed before any answer, or the
// answer is ebpfjail's 403. Anything else counts as leaked, silence
// included: ebpfjail answers a denied request at once.
func exchange(c net.Conn, req string) (Status, string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		return Blocked, "write: " + errText(err)
	}
	return judgeResponse(bufio.NewReader(c))
}

func judgeResponse(br *bufio.Reader) (Status, string) {
	return judge(http.ReadResponse(br, nil))
}

func judge(resp *http.Response, err error) (Status, string) {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Leaked, "no answer in " + opTimeout.String() + ": something other than ebpfjail holds the connection"
		}
		return Blocked, "connection closed without an answer (" + errText(err) + ")"
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden && strings.HasPrefix(string(body), denyBody) {
		return Blocked, "403 from ebpfjail"
	}
	return Leaked, fmt.Sprintf("HTTP %d %q", resp.StatusCode, firstLine(string(body)))
}

// isDenied reports whether err is the kernel refusing an operation.
func isDenied(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 60 {
		return s[i+2:]
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
