//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Test hosts take their addresses from these documentation prefixes only:
// the machines that run the tests use 192.0.2.0/24 and fd00::/64 on eth0, so
// anything else could reach (or shadow) real networks.
var (
	prefix4 = netip.MustParsePrefix("198.51.100.0/24")
	prefix6 = netip.MustParsePrefix("2001:db8:eb::/64")
)

const (
	// numSlots is how many /30s fit in prefix4; slot s owns
	// 198.51.100.4s/30 and 2001:db8:eb::4s/126.
	numSlots  = 64
	slotBits4 = 30
	slotBits6 = 126

	netnsDir   = "/run/netns" // where netns.NewNamed and ip-netns(8) pin namespaces
	lockPrefix = "ebpfjail-testhost-"
)

// Host is a test host: a network namespace joined to the test's namespace by
// a veth pair. Servers started with its methods run inside the namespace and
// are reached from the test at IPv4 and IPv6; they see connections come from
// HostIPv4 and HostIPv6.
type Host struct {
	Name string // network namespace name, as in ip netns exec Name …
	Link string // veth end in the test's namespace

	IPv4 netip.Addr // inside the namespace
	IPv6 netip.Addr

	HostIPv4 netip.Addr // on Link, in the test's namespace
	HostIPv6 netip.Addr

	slot int
	peer string // veth end inside the namespace
	ns   netns.NsHandle

	mu   sync.Mutex
	seen []string // "Host /path" of every HTTP request served
}

// NewHost creates a test host and removes it, with every server started on
// it, when the test ends. It skips the test unless it runs as root.
func NewHost(tb testing.TB) *Host {
	tb.Helper()
	RequireRoot(tb)

	slot, lock, err := reserveSlot()
	if err != nil {
		tb.Fatalf("create test host: %v", err)
	}
	h := &Host{
		slot:     slot,
		Name:     fmt.Sprintf("ebjt%d", slot),
		Link:     fmt.Sprintf("ebjh%d", slot),
		peer:     fmt.Sprintf("ebjn%d", slot),
		HostIPv4: slotAddr(prefix4, slot, 1),
		IPv4:     slotAddr(prefix4, slot, 2),
		HostIPv6: slotAddr(prefix6, slot, 1),
		IPv6:     slotAddr(prefix6, slot, 2),
		ns:       netns.None(),
	}
	// Registered before anything is created so a half-built host is torn
	// down too; cleanups run last-in first-out, so servers started on the
	// host later are stopped before it goes.
	tb.Cleanup(func() {
		if err := h.remove(); err != nil {
			tb.Errorf("remove test host %s: %v", h.Name, err)
		}
		releaseSlot(lock)
	})
	if err := h.setup(); err != nil {
		tb.Fatalf("create test host %s: %v", h.Name, err)
	}
	return h
}

// slotAddr returns the n-th address of slot's /30 or /126 within p.
func slotAddr(p netip.Prefix, slot, n int) netip.Addr {
	b := p.Addr().As16()
	v := slot*4 + n // fits the last byte: numSlots*4 == 256
	b[15] = byte(v)
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

func lockPath(slot int) string {
	return filepath.Join(lockDir, fmt.Sprintf("%s%d.lock", lockPrefix, slot))
}

// reserveSlot takes the first free slot. The lock is held, by keeping the
// file open, until releaseSlot, and dies with the process, so a crashed test
// leaves nothing that blocks the slot.
func reserveSlot() (int, *os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("create lock directory: %w", err)
	}
	for slot := range numSlots {
		f, err := tryLock(lockPath(slot))
		if err != nil {
			return 0, nil, err
		}
		if f != nil {
			return slot, f, nil
		}
	}
	return 0, nil, fmt.Errorf("reserve address slot: all %d slots are in use", numSlots)
}

// tryLock returns the locked file at path, or nil if someone else holds it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// A holder unlinks the file before it unlocks, so we may have locked a
	// file that is no longer at path while someone else locks its successor.
	// Only the file still at path reserves the slot.
	var held, named unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat lock file: %w", err)
	}
	if err := unix.Stat(path, &named); err != nil || held.Dev != named.Dev || held.Ino != named.Ino {
		f.Close()
		return nil, nil
	}
	// The pid is only for people wondering who holds a slot.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

func releaseSlot(f *os.File) {
	os.Remove(f.Name()) // before unlocking: see tryLock
	f.Close()
}

func (h *Host) setup() error {
	// We hold the slot, so anything under these names was left by a test
	// that died before its cleanup.
	if err := h.remove(); err != nil {
		return fmt.Errorf("remove stale host: %w", err)
	}
	ns, err := newNamedNetns(h.Name)
	if err != nil {
		return err
	}
	h.ns = ns

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: h.Link},
		PeerName:      h.peer,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", h.Link, err)
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink in %s: %w", h.Name, err)
	}
	defer nh.Close()

	// Without duplicate address detection IPv6 addresses are usable at once
	// instead of after a second or two of tentative state. The sysctl also
	// covers the link-local address; it must be set before the link is up.
	if err := disableDAD(h.Link); err != nil {
		return err
	}
	if err := inNetns(ns, func() error { return disableDAD(h.peer) }); err != nil {
		return err
	}

	root, err := netlink.LinkByName(h.Link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", h.Link, err)
	}
	if err := configure(&netlink.Handle{}, root, h.HostIPv4, h.HostIPv6); err != nil {
		return err
	}
	inner, err := nh.LinkByName(h.peer)
	if err != nil {
		return fmt.Errorf("find link %s in %s: %w", h.peer, h.Name, err)
	}
	if err := configure(nh, inner, h.IPv4, h.IPv6); err != nil {
		return err
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", h.Name, err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in %s: %w", h.Name, err)
	}
	return nil
}

// configure gives link its slot addresses and brings it up. An empty Handle
// works in the caller's namespace.
func configure(nh *netlink.Handle, link netlink.Link, a4, a6 netip.Addr) error {
	for _, a := range []netip.Prefix{
		netip.PrefixFrom(a4, slotBits4),
		netip.PrefixFrom(a6, slotBits6),
	} {
		addr := &netlink.Addr{
			IPNet: &net.IPNet{
				IP:   a.Addr().AsSlice(),
				Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen()),
			},
		}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := nh.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a, link.Attrs().Name, err)
		}
	}
	if err := nh.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", link.Attrs().Name, err)
	}
	return nil
}

// disableDAD turns off duplicate address detection on link in the calling
// thread's namespace (/proc/sys/net follows the thread's namespace).
func disableDAD(link string) error {
	p := filepath.Join("/proc/sys/net/ipv6/conf", link, "accept_dad")
	if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("disable dad on %s: %w", link, err)
	}
	return nil
}

// remove deletes the host's veth pair and namespace if they exist. It is
// safe on a host that was never (fully) created.
func (h *Host) remove() error {
	var errs []error
	// Deleting a namespace is asynchronous (and waits for every socket in
	// it to close), so the veth is deleted explicitly: that is immediate and
	// takes its peer with it, so the names are free for the next host.
	for _, name := range []string{h.Link, h.peer} {
		link, err := netlink.LinkByName(name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if !errors.As(err, &nf) {
				errs = append(errs, fmt.Errorf("find link %s: %w", name, err))
			}
			continue
		}
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
		}
	}
	if h.ns.IsOpen() {
		if err := h.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close netns %s: %w", h.Name, err))
		}
		h.ns = netns.None()
	}
	if err := deleteNamedNetns(h.Name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// newNamedNetns creates a network namespace pinned at /run/netns/name (so
// ip netns sees it) without moving the calling goroutine's thread into it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		// netns.NewNamed switches the thread into the new namespace. On any
		// failure the thread stays locked, so it exits with this goroutine
		// instead of running other goroutines in the wrong namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{netns.None(), fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err != nil {
			done <- result{netns.None(), fmt.Errorf("create netns %s: %w", name, err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			done <- result{netns.None(), fmt.Errorf("return from netns %s: %w", name, err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ns, nil}
	}()
	r := <-done
	return r.ns, r.err
}

// deleteNamedNetns unpins /run/netns/name; the namespace itself goes once
// nothing uses it. A missing or unmounted pin is not an error, so this also
// clears leftovers of a test that died half way.
func deleteNamedNetns(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// inNetns runs fn on a thread switched into ns. Sockets created by fn stay
// in ns for life, so they can then be used from any goroutine. If the thread
// cannot be switched back it stays locked and exits with the goroutine.
func inNetns(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			done <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("return from netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// Listen is net.Listen inside the host's namespace. The listener is closed
// when the test ends.
func (h *Host) Listen(tb testing.TB, network, addr string) net.Listener {
	tb.Helper()
	ln, err := h.listen(network, addr)
	if err != nil {
		tb.Fatalf("listen on %s %s in %s: %v", network, addr, h.Name, err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// ListenPacket is net.ListenPacket inside the host's namespace. The
// connection is closed when the test ends.
func (h *Host) ListenPacket(tb testing.TB, network, addr string) net.PacketConn {
	tb.Helper()
	pc, err := h.listenPacket(network, addr)
	if err != nil {
		tb.Fatalf("listen on %s %s in %s: %v", network, addr, h.Name, err)
	}
	tb.Cleanup(func() { pc.Close() })
	return pc
}

func (h *Host) listen(network, addr string) (ln net.Listener, err error) {
	err = inNetns(h.ns, func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

func (h *Host) listenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = inNetns(h.ns, func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}
