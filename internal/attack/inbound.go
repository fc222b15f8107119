//go:build linux

package attack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The inbound sender's link: a veth between this host and a network
// namespace of the check's own, with link-local addresses only (a /32 and
// a route to the other end; fe80:: on the link), so nothing it sends can
// be routed off the machine, and nothing else on the host uses them.
var (
	InboundHost   = netip.MustParseAddr("169.254.74.1") // this host's end
	InboundSender = netip.MustParseAddr("169.254.74.2") // the sender's end
	inboundHost6  = netip.MustParseAddr("fe80::eb:1")
	inboundSend6  = netip.MustParseAddr("fe80::eb:2")
)

// inboundEvery is how often the sender tries.
const inboundEvery = 100 * time.Millisecond

// inboundSender is "another host": it connects and sends, again and again,
// to a port of this host through its veth.
type inboundSender struct {
	hostLink, peerLink string
	stop               chan struct{}
	done               chan struct{}
	armed              atomic.Bool // hits count (after the control)
}

// StartInbound starts the inbound sender and returns the port it sends to
// (for Spec.Inbound). It proves first that the path works: a listener of
// its own, outside any jail, must get a connection from the sender, or it
// returns an error (the attempt then has nothing to prove). From then on
// a TCP connection the sender gets through is a hit ("inbound"). Close
// removes the namespace and the veth.
func (c *Canaries) StartInbound() (uint16, error) {
	s := &inboundSender{
		hostLink: "ebja" + strconv.Itoa(os.Getpid()%100000000),
		peerLink: "ebjb" + strconv.Itoa(os.Getpid()%100000000),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	port, err := freeWildcardPort()
	if err != nil {
		return 0, fmt.Errorf("start inbound sender: %w", err)
	}
	ns, err := s.setup()
	if err != nil {
		s.remove()
		return 0, fmt.Errorf("start inbound sender: %w", err)
	}
	go s.run(ns, port, c)
	c.closers = append(c.closers, closerFunc(func() error {
		close(s.stop)
		<-s.done
		return s.remove()
	}))
	if err := controlInbound(port); err != nil {
		return 0, fmt.Errorf("start inbound sender: %w", err)
	}
	s.armed.Store(true)
	return port, nil
}

// setup makes the namespace (held by the returned handle only: it goes
// with the sender's thread and the handle) and the veth.
func (s *inboundSender) setup() (netns.NsHandle, error) {
	type res struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// On failure the thread stays locked and exits with the goroutine
		// rather than run anything else in the wrong namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			ch <- res{err: fmt.Errorf("create network namespace: %w", err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			ch <- res{err: err}
			return
		}
		runtime.UnlockOSThread()
		ch <- res{ns: ns}
	}()
	r := <-ch
	if r.err != nil {
		return r.ns, r.err
	}
	ns := r.ns
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: s.hostLink}, PeerName: s.peerLink, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		ns.Close()
		return ns, fmt.Errorf("add veth %s: %w", s.hostLink, err)
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return ns, fmt.Errorf("open netlink in the sender's namespace: %w", err)
	}
	defer nh.Close()
	host, err := netlink.LinkByName(s.hostLink)
	if err == nil {
		err = linkLocal(&netlink.Handle{}, host, InboundHost, InboundSender, inboundHost6)
	}
	if err != nil {
		ns.Close()
		return ns, err
	}
	peer, err := nh.LinkByName(s.peerLink)
	if err == nil {
		err = linkLocal(nh, peer, InboundSender, InboundHost, inboundSend6)
	}
	if err != nil {
		ns.Close()
		return ns, err
	}
	return ns, nil
}

// linkLocal gives link a /32, a route to the other end's /32 through it
// (and nothing wider), and a link-local IPv6 address, then brings it up.
func linkLocal(nh *netlink.Handle, link netlink.Link, self, other, self6 netip.Addr) error {
	name := link.Attrs().Name
	for _, a := range []*netlink.Addr{
		{IPNet: &net.IPNet{IP: self.AsSlice(), Mask: net.CIDRMask(32, 32)}},
		{IPNet: &net.IPNet{IP: self6.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD},
	} {
		if err := nh.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a.IPNet, name, err)
		}
	}
	if err := nh.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: other.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := nh.RouteAdd(route); err != nil {
		return fmt.Errorf("add route to %s on %s: %w", other, name, err)
	}
	return nil
}

// run sends from inside ns until stop: a TCP connection (IPv4 and IPv6)
// and a datagram each to port, every inboundEvery.
func (s *inboundSender) run(ns netns.NsHandle, port uint16, c *Canaries) {
	defer close(s.done)
	defer ns.Close()
	// This thread never comes back to the host's namespace: it exits with
	// the goroutine (still locked).
	runtime.LockOSThread()
	if err := netns.Set(ns); err != nil {
		return
	}
	v4 := netip.AddrPortFrom(InboundHost, port).String()
	v6 := net.JoinHostPort(inboundHost6.String()+"%"+s.peerLink, strconv.Itoa(int(port)))
	tick := time.NewTicker(inboundEvery)
	defer tick.Stop()
	recorded := map[string]bool{}
	for {
		// Read before dialling: a connection the control's listener took
		// into its backlog just before it closed is not a hit.
		armed := s.armed.Load()
		for _, to := range []string{v4, v6} {
			if conn, err := net.DialTimeout("tcp", to, inboundEvery); err == nil {
				if armed && !recorded[to] {
					recorded[to] = true
					c.record("inbound", "inbound: a connection from another host to "+to+" was accepted")
				}
				conn.Write([]byte("inbound\n"))
				conn.Close()
			}
			if conn, err := net.Dial("udp", to); err == nil {
				conn.Write([]byte("inbound\n"))
				conn.Close()
			}
		}
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// remove deletes the veth (its peer goes with it); the namespace goes when
// its last handle does.
func (s *inboundSender) remove() error {
	link, err := netlink.LinkByName(s.hostLink)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", s.hostLink, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", s.hostLink, err)
	}
	return nil
}

// controlInbound listens at port outside the jail until the sender gets a
// connection through, over IPv4 and IPv6: then the path works.
func controlInbound(port uint16) error {
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, net.JoinHostPort(wildcard(network), strconv.Itoa(int(port))))
		if err != nil {
			return fmt.Errorf("control listener: %w", err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
		conn, err := ln.Accept()
		ln.Close()
		if err != nil {
			return fmt.Errorf("control: the sender did not reach an unjailed listener on %s: %w", network, err)
		}
		conn.Close()
	}
	return nil
}

// freeWildcardPort finds a port free on 0.0.0.0 and [::] for TCP and UDP.
func freeWildcardPort() (uint16, error) {
	for range 20 {
		ln, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		var held []interface{ Close() error }
		ok := true
		for _, network := range []string{"tcp6", "udp4", "udp6"} {
			addr := net.JoinHostPort(wildcard(network), strconv.Itoa(port))
			var c interface{ Close() error }
			if network == "tcp6" {
				c, err = net.Listen(network, addr)
			} else {
				c, err = net.ListenPacket(network, addr)
			}
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		ln.Close()
		for _, c := range held {
			c.Close()
		}
		if ok {
			return uint16(port), nil
		}
	}
	return 0, errors.New("no port free on 0.0.0.0 and [::]")
}
