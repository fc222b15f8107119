package proxy

import (
	"fmt"
	"net"

	"github.com/vishvananda/netns"

	"github.com/ebpfjail/ebpfjail/internal/inns"
)

// ListenIn serves the proxy's ports on 127.0.0.1 (and [::1], if the
// namespace has it) inside the network namespace ns as well: the kernel
// steers a container with a namespace of its own to its own loopback.
// Call it before Close.
func (p *Proxy) ListenIn(ns netns.NsHandle) error {
	for i, a := range []struct{ network, addr string }{{"tcp4", "127.0.0.1"}, {"tcp6", "::1"}} {
		var ln net.Listener
		err := inns.Do(ns, func() (err error) {
			ln, err = net.Listen(a.network, net.JoinHostPort(a.addr, fmt.Sprint(p.ports[i])))
			return err
		})
		if err != nil && i == 1 {
			continue // no IPv6 in ns: connections to it fail, as they must
		}
		if err != nil {
			return fmt.Errorf("listen in the container's namespace: %w", err)
		}
		p.lns = append(p.lns, ln)
		p.wg.Add(1)
		go p.serve(ln, false)
	}
	return nil
}
