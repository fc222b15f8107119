package dns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/inns"
)

// ListenIn serves the shim's ports on 127.0.0.1 (and [::1], if the
// namespace has it) inside the network namespace ns as well: a container
// with a namespace of its own sends its lookups there. Its clients'
// sockets are looked up in ns too. Call it before Close.
func (s *Shim) ListenIn(ns netns.NsHandle) error {
	// The caller's handle may close; the lookups need one until Close.
	fd, err := unix.Dup(int(ns))
	if err != nil {
		return fmt.Errorf("hold the container's network namespace: %w", err)
	}
	ns = netns.NsHandle(fd)
	s.closers = append(s.closers, ns.Close)
	cookie := func(client, shim netip.AddrPort) (uint64, error) {
		var c uint64
		err := inns.Do(ns, func() (err error) {
			c, err = udpSocketCookie(client, shim)
			return err
		})
		return c, err
	}
	for _, a := range []struct {
		network, addr string
		port          uint16
	}{{"udp4", "127.0.0.1", s.v4}, {"udp6", "::1", s.v6}} {
		var pc net.PacketConn
		err := inns.Do(ns, func() (err error) {
			pc, err = net.ListenPacket(a.network, net.JoinHostPort(a.addr, fmt.Sprint(a.port)))
			return err
		})
		if err != nil && a.network == "udp6" {
			continue // no IPv6 in ns: its lookups over IPv6 fail, as they must
		}
		if err != nil {
			return fmt.Errorf("listen in the container's namespace: %w", err)
		}
		if _, err := s.servePacketConn(pc, cookie); err != nil {
			return err
		}
	}
	return nil
}
