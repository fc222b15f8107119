//go:build !linux

package dns

import (
	"errors"
	"net/netip"
)

// udpSocketCookie needs sock_diag, which only Linux has; no jail runs
// elsewhere, so no UDP client there has a record to find.
func udpSocketCookie(client, shim netip.AddrPort) (uint64, error) {
	return 0, errors.New("find udp socket: sock_diag needs Linux")
}
