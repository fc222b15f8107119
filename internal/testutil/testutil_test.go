//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// client talks to test hosts directly: no proxy from the environment.
func client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client().Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp, string(body)
}

// families lists a host's addresses with the root-side address it should see
// connections from.
func families(h *Host) []struct {
	name       string
	addr, from netip.Addr
} {
	return []struct {
		name       string
		addr, from netip.Addr
	}{
		{"ipv4", h.IPv4, h.HostIPv4},
		{"ipv6", h.IPv6, h.HostIPv6},
	}
}

func TestPrivilegedHostHTTP(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	h := NewHost(t)
	ln := h.ServeHTTP(t, 0)
	port := ln.Addr().(*net.TCPAddr).Port

	for _, f := range families(h) {
		t.Run(f.name, func(t *testing.T) {
			hostport := net.JoinHostPort(f.addr.String(), strconv.Itoa(port))
			resp, body := get(t, "http://"+hostport+"/")
			if resp.StatusCode != http.StatusOK || body != HelloBody {
				t.Errorf("GET /: got %d %q, want 200 %q", resp.StatusCode, body, HelloBody)
			}
			if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
				t.Errorf("protocol: got %s, want HTTP/1.1", resp.Proto)
			}
			remote, err := netip.ParseAddrPort(resp.Header.Get("X-Remote-Addr"))
			if err != nil || remote.Addr() != f.from {
				t.Errorf("X-Remote-Addr: got %q, want %s:port", resp.Header.Get("X-Remote-Addr"), f.from)
			}
			if got := resp.Header.Get("X-Host"); got != hostport {
				t.Errorf("X-Host: got %q, want %q", got, hostport)
			}

			resp, body = get(t, "http://"+hostport+"/bytes?n=100000")
			if resp.StatusCode != http.StatusOK || body != strings.Repeat("x", 100000) {
				t.Errorf("GET /bytes?n=100000: got %d and %d bytes, want 200 and 100000 bytes", resp.StatusCode, len(body))
			}

			const payload = "ping\x00pong"
			eresp, err := client().Post("http://"+hostport+"/echo", "application/octet-stream", strings.NewReader(payload))
			if err != nil {
				t.Fatalf("POST /echo: %v", err)
			}
			defer eresp.Body.Close()
			echoed, err := io.ReadAll(eresp.Body)
			if err != nil || string(echoed) != payload {
				t.Errorf("POST /echo: got %q (err %v), want %q", echoed, err, payload)
			}
		})
	}
}

func TestPrivilegedHostDNS(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	h := NewHost(t)
	rec := h.ServeDNS(t, 53)
	if rec.Port() != 53 {
		t.Errorf("Port: got %d, want 53", rec.Port())
	}

	var want []DNSQuery
	for _, f := range families(h) {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(f.name+"/"+network, func(t *testing.T) {
				server := net.JoinHostPort(f.addr.String(), "53")
				c := &dns.Client{Net: network, Timeout: 5 * time.Second}
				for _, tc := range []struct {
					name  string
					qtype uint16
					rcode int
					addr  netip.Addr
				}{
					{"www.example.test.", dns.TypeA, dns.RcodeSuccess, h.IPv4},
					{"Mixed.Case.TEST.", dns.TypeAAAA, dns.RcodeSuccess, h.IPv6},
					{"test.", dns.TypeTXT, dns.RcodeSuccess, netip.Addr{}},
					{"example.com.", dns.TypeA, dns.RcodeNameError, netip.Addr{}},
					{"nottest.", dns.TypeAAAA, dns.RcodeNameError, netip.Addr{}},
				} {
					m := new(dns.Msg).SetQuestion(tc.name, tc.qtype)
					r, _, err := c.Exchange(m, server)
					if err != nil {
						t.Fatalf("query %s %s: %v", tc.name, dns.TypeToString[tc.qtype], err)
					}
					var got []netip.Addr
					for _, rr := range r.Answer {
						switch rr := rr.(type) {
						case *dns.A:
							a, _ := netip.AddrFromSlice(rr.A)
							got = append(got, a.Unmap())
						case *dns.AAAA:
							a, _ := netip.AddrFromSlice(rr.AAAA)
							got = append(got, a)
						}
					}
					var wantAddrs []netip.Addr
					if tc.addr.IsValid() {
						wantAddrs = []netip.Addr{tc.addr}
					}
					if r.Rcode != tc.rcode || !slices.Equal(got, wantAddrs) {
						t.Errorf("query %s %s: got %s %v, want %s %v", tc.name, dns.TypeToString[tc.qtype],
							dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.rcode], wantAddrs)
					}
					want = append(want, DNSQuery{
						Name:    tc.name,
						Type:    dns.TypeToString[tc.qtype],
						Network: network,
						Source:  netip.AddrPortFrom(f.from, 0), // port compared separately
					})
				}
			})
		}
	}

	got := rec.Queries()
	for i := range got {
		if got[i].Source.Port() == 0 {
			t.Errorf("query %d: source port 0", i)
		}
		got[i].Source = netip.AddrPortFrom(got[i].Source.Addr(), 0)
	}
	if !slices.Equal(got, want) {
		t.Errorf("recorded queries:\ngot  %v\nwant %v", got, want)
	}
}

func TestPrivilegedTwoHosts(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	a, b := NewHost(t), NewHost(t)
	for _, h := range []*Host{a, b} {
		for _, p := range []struct {
			addr   netip.Addr
			prefix netip.Prefix
		}{
			{h.IPv4, prefix4}, {h.HostIPv4, prefix4},
			{h.IPv6, prefix6}, {h.HostIPv6, prefix6},
		} {
			if !p.prefix.Contains(p.addr) {
				t.Errorf("host %s: address %s outside %s", h.Name, p.addr, p.prefix)
			}
		}
	}
	if a.Name == b.Name || a.Link == b.Link {
		t.Errorf("names: got %s/%s twice, want distinct", a.Name, a.Link)
	}
	seen := map[netip.Addr]bool{}
	for _, addr := range []netip.Addr{a.IPv4, a.HostIPv4, a.IPv6, a.HostIPv6, b.IPv4, b.HostIPv4, b.IPv6, b.HostIPv6} {
		if seen[addr] {
			t.Errorf("address %s given out twice: a=%+v b=%+v", addr, a, b)
		}
		seen[addr] = true
	}

	// Same port in both: each host is its own namespace.
	a.ServeHTTP(t, 80)
	b.ServeHTTP(t, 80)
	for _, h := range []*Host{a, b} {
		for _, f := range families(h) {
			resp, _ := get(t, "http://"+net.JoinHostPort(f.addr.String(), "80")+"/")
			remote, err := netip.ParseAddrPort(resp.Header.Get("X-Remote-Addr"))
			if err != nil || remote.Addr() != f.from {
				t.Errorf("%s %s: X-Remote-Addr got %q, want %s:port", h.Name, f.name, resp.Header.Get("X-Remote-Addr"), f.from)
			}
		}
	}
}

// TestPrivilegedHostCleanup checks that a host's own netns pin, veth, lock
// file and sockets are gone after its test. It checks identities, not names:
// other tests, here or in other packages, may take the slot at once.
func TestPrivilegedHostCleanup(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	var (
		h     *Host
		ln    net.Listener
		pc    net.PacketConn
		nsFd  netns.NsHandle // keeps the namespace, so its inode, unique
		lock  *os.File       // keeps the lock file's inode from reuse
		index int
	)
	t.Run("host", func(t *testing.T) {
		h = NewHost(t)
		ln = h.ServeHTTP(t, 80)
		h.ServeDNS(t, 0)
		pc = h.ListenPacket(t, "udp", "127.0.0.1:0")
		var err error
		if nsFd, err = netns.GetFromName(h.Name); err != nil {
			t.Fatalf("open netns: %v", err)
		}
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			t.Fatalf("find veth: %v", err)
		}
		index = link.Attrs().Index
		if lock, err = os.Open(lockPath(h.slot)); err != nil {
			t.Fatalf("open lock file: %v", err)
		}
	})
	if h == nil || !nsFd.IsOpen() || lock == nil {
		t.Fatal("no host created")
	}
	defer nsFd.Close()
	defer lock.Close()

	netnsGone(t, h, nsFd)
	vethGone(t, h, nsFd, index)

	var lockStat unix.Stat_t
	if err := unix.Fstat(int(lock.Fd()), &lockStat); err != nil || lockStat.Nlink != 0 {
		t.Errorf("lock file after cleanup: got %d links (err %v), want 0", lockStat.Nlink, err)
	}

	// Not checked by dialing: another test may own the slot by now.
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after cleanup: got err %v, want %v", err, net.ErrClosed)
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after cleanup: got err %v, want %v", err, net.ErrClosed)
	}
}

// netnsGone checks that the removed host's namespace, open as nsFd, is
// neither pinned nor listed by ip netns under the host's name.
func netnsGone(t *testing.T, h *Host, nsFd netns.NsHandle) {
	t.Helper()
	var nsStat unix.Stat_t
	if err := unix.Fstat(int(nsFd), &nsStat); err != nil {
		t.Fatalf("stat netns: %v", err)
	}
	pin := fmt.Sprintf("net:[%d]", nsStat.Ino)
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mountinfo)) {
		if f := strings.Fields(line); len(f) > 4 && f[3] == pin {
			t.Errorf("netns %s still pinned: %s", h.Name, line)
		}
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != h.Name {
			continue
		}
		// Listed under our name: fine only if it is a new host's.
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(netnsDir, h.Name), &st); err == nil && st.Ino == nsStat.Ino {
			t.Errorf("ip netns list: got %q, want no %s", line, h.Name)
		}
	}
}

// vethGone checks that both ends of the removed host's veth pair are gone:
// the one at index in the test's namespace and the one in nsFd.
func vethGone(t *testing.T, h *Host, nsFd netns.NsHandle, index int) {
	t.Helper()
	var nf netlink.LinkNotFoundError
	if link, err := netlink.LinkByIndex(index); !errors.As(err, &nf) {
		t.Errorf("veth %s (index %d) after cleanup: got %v (err %v), want not found", h.Link, index, link, err)
	}
	nh, err := netlink.NewHandleAt(nsFd)
	if err != nil {
		t.Fatalf("open netlink in old netns: %v", err)
	}
	defer nh.Close()
	if link, err := nh.LinkByName(h.peer); !errors.As(err, &nf) {
		t.Errorf("veth %s in old netns after cleanup: got %v (err %v), want not found", h.peer, link, err)
	}
}

// TestPrivilegedThreadsStayHome checks that entering a host's namespace
// never leaves a thread of the test process behind in it.
func TestPrivilegedThreadsStayHome(t *testing.T) {
	RequireRoot(t)
	h := NewHost(t)
	for range 20 {
		h.Listen(t, "tcp", "[::]:0")
		h.ListenPacket(t, "udp", "[::]:0")
	}
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("list threads: %v", err)
	}
	for _, p := range tasks {
		ns, err := os.Readlink(p)
		if err == nil && ns != home {
			t.Errorf("%s: got %s, want %s", p, ns, home)
		}
	}
}

func TestSlotAddr(t *testing.T) {
	for _, tc := range []struct {
		slot, n int
		p       netip.Prefix
		want    string
	}{
		{0, 1, prefix4, "198.51.100.1"},
		{0, 2, prefix4, "198.51.100.2"},
		{1, 1, prefix4, "198.51.100.5"},
		{numSlots - 1, 2, prefix4, "198.51.100.254"},
		{0, 1, prefix6, "2001:db8:eb::1"},
		{numSlots - 1, 2, prefix6, "2001:db8:eb::fe"},
	} {
		if got := slotAddr(tc.p, tc.slot, tc.n); got.String() != tc.want {
			t.Errorf("slotAddr(%s, %d, %d): got %s, want %s", tc.p, tc.slot, tc.n, got, tc.want)
		}
	}
}

func TestCgroup2Mount(t *testing.T) {
	mnt := Cgroup2Mount(t)
	if _, err := os.Stat(filepath.Join(mnt, "cgroup.controllers")); err != nil {
		t.Errorf("Cgroup2Mount() = %s: not a cgroup2 root: %v", mnt, err)
	}
}
