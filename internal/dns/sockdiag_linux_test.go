package dns

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPSocketCookie looks client sockets up by their ends, as the shim
// does for each datagram, and compares with what getsockopt(SO_COOKIE) says.
func TestUDPSocketCookie(t *testing.T) {
	t.Parallel()
	shim4 := listenUDP(t, "udp4", "127.0.0.1:0")
	shim6 := listenUDP(t, "udp6", "[::1]:0")
	shim4Addr := shim4.LocalAddr().(*net.UDPAddr).AddrPort()
	shim6Addr := shim6.LocalAddr().(*net.UDPAddr).AddrPort()

	t.Run("connected v4", func(t *testing.T) {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(shim4Addr))
		if err != nil {
			t.Fatalf("net.DialUDP(): %v", err)
		}
		defer c.Close()
		checkCookie(t, c.LocalAddr().(*net.UDPAddr).AddrPort(), shim4Addr, socketCookie(t, c))
	})
	t.Run("connected v6", func(t *testing.T) {
		c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(shim6Addr))
		if err != nil {
			t.Fatalf("net.DialUDP(): %v", err)
		}
		defer c.Close()
		checkCookie(t, c.LocalAddr().(*net.UDPAddr).AddrPort(), shim6Addr, socketCookie(t, c))
	})
	t.Run("unconnected v4", func(t *testing.T) {
		// Bound to the wildcard: the datagram's source address (chosen by
		// the kernel) is not the socket's.
		c := listenUDP(t, "udp4", "0.0.0.0:0")
		if _, err := c.WriteToUDPAddrPort([]byte("x"), shim4Addr); err != nil {
			t.Fatalf("WriteTo(): %v", err)
		}
		src := netip.AddrPortFrom(shim4Addr.Addr(), c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		checkCookie(t, src, shim4Addr, socketCookie(t, c))
	})
	// A client that connects an AF_INET6 socket to ::ffff:127.0.0.1 sends
	// IPv4 datagrams from an IPv6 socket.
	for _, connected := range []bool{true, false} {
		name := "v4-mapped unconnected"
		if connected {
			name = "v4-mapped connected"
		}
		t.Run(name, func(t *testing.T) {
			port, cookie := dualStackClient(t, shim4Addr, connected)
			src := netip.AddrPortFrom(shim4Addr.Addr(), port)
			checkCookie(t, src, shim4Addr, cookie)
			// The fallback: the same socket found among AF_INET6 sockets
			// with the mapped addresses.
			got, err := diagUDP(unix.AF_INET6, mapped(src), mapped(shim4Addr))
			if err != nil || got != cookie {
				t.Errorf("diagUDP(AF_INET6, %s, %s): got %d, %v, want %d", mapped(src), mapped(shim4Addr), got, err, cookie)
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(shim4Addr))
		if err != nil {
			t.Fatalf("net.DialUDP(): %v", err)
		}
		src := c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close()
		if got, err := udpSocketCookie(src, shim4Addr); !errors.Is(err, errNoSocket) {
			t.Errorf("udpSocketCookie() of a closed socket: got %d, %v, want errNoSocket", got, err)
		}
	})
	t.Run("shim itself is not the client", func(t *testing.T) {
		// The lookup with the ends the wrong way round would find the
		// shim's own socket; a lookup for a port nobody holds must not.
		if got, err := udpSocketCookie(netip.MustParseAddrPort("127.0.0.1:1"), shim4Addr); err == nil {
			t.Errorf("udpSocketCookie() for an unbound port: got %d, want an error", got)
		}
	})
}

func checkCookie(t *testing.T, client, shim netip.AddrPort, want uint64) {
	t.Helper()
	got, err := udpSocketCookie(client, shim)
	if err != nil {
		t.Fatalf("udpSocketCookie(%s, %s): %v", client, shim, err)
	}
	if got != want {
		t.Errorf("udpSocketCookie(%s, %s): got %d, want SO_COOKIE %d", client, shim, got, want)
	}
}

func listenUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		t.Fatalf("net.ListenUDP(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dualStackClient opens an AF_INET6 UDP socket that reaches the IPv4 shim
// through its v4-mapped address, connected or with sendto, and returns its
// local port and cookie. Go's net package would pick AF_INET for this.
func dualStackClient(t *testing.T, shim netip.AddrPort, connect bool) (uint16, uint64) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket(AF_INET6): %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		t.Fatalf("setsockopt(IPV6_V6ONLY): %v", err)
	}
	sa := &unix.SockaddrInet6{Port: int(shim.Port()), Addr: shim.Addr().As16()}
	if connect {
		err = unix.Connect(fd, sa)
	} else {
		err = unix.Sendto(fd, []byte("x"), 0, sa)
	}
	if err != nil {
		t.Fatalf("reach %s: %v", mapped(shim), err)
	}
	lsa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname(): %v", err)
	}
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatalf("getsockopt(SO_COOKIE): %v", err)
	}
	return uint16(lsa.(*unix.SockaddrInet6).Port), cookie
}
