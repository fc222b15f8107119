package proxy

import (
	"net"
	"net/netip"
)

// requesterIP is r.requester_ip of a connection the kernel steered here
// on its way to dst: the source address it would have had without the
// redirect, which is the route's toward dst (the peer address the
// listener sees is only the redirect's loopback). It is loopback only when
// dst is. A fake DNS address is routed like any address outside (the
// name's real one is not looked up before the rule decides), so it gives
// the default route's source. Without a route it is the unspecified
// address of dst's family: the child's connect() would have failed.
//
// A connected UDP socket asks the kernel for the route (connect() on UDP
// sends nothing), from ebpfjail's own network namespace, which is the
// jail's.
func requesterIP(dst netip.AddrPort) string {
	a := dst.Addr().Unmap()
	port := dst.Port()
	if port == 0 {
		port = 9 // any port routes the same; connect() wants one
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
	if err != nil {
		if a.Is4() {
			return netip.IPv4Unspecified().String()
		}
		return netip.IPv6Unspecified().String()
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().String()
}
