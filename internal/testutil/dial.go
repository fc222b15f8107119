//go:build linux

package testutil

import (
	"net"
	"time"
)

// Dial is net.DialTimeout from inside the host's namespace: the host is
// then the client, and the test's namespace sees the connection come in
// over the host's veth, from IPv4 or IPv6. The connection is the caller's
// to close.
func (h *Host) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.ns, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}
