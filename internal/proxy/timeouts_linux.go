package proxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// moved sums what the kernel counts as moved on conns: bytes received and
// bytes sent and acknowledged by the peer.
func moved(conns []*net.TCPConn) uint64 {
	var sum uint64
	for _, c := range conns {
		raw, err := c.SyscallConn()
		if err != nil {
			continue
		}
		raw.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				sum += info.Bytes_received + info.Bytes_acked
			}
		})
	}
	return sum
}
