package tests

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

const testhostScript = "../scripts/testhost"

// scripts/testhost brings up a host that is reached at the addresses it
// prints, from the test prefixes only, and down leaves nothing of it: no
// namespace, no veth, no slot lock, no process.
func TestPrivilegedTesthostScriptLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "ip")
	requireTool(t, "flock")
	name := fmt.Sprintf("ebjs%d", os.Getpid())
	t.Cleanup(func() { exec.Command(testhostScript, "down", name).Run() })

	if out, err := exec.Command(testhostScript, "up", name, "64").CombinedOutput(); err == nil || !strings.Contains(string(out), "refusing") {
		t.Errorf("up with slot 64 (outside 198.51.100.0/24): got %v, want a refusal\n%s", err, out)
	}
	out, err := exec.Command(testhostScript, "up", name).CombinedOutput()
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`inside (\S+) and (\S+), this side \S+ and \S+ on (\S+)\.`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("up did not say where the host is:\n%s", out)
	}
	link := m[3]
	for _, a := range m[1:3] {
		addr := netip.MustParseAddr(a)
		if !netip.MustParsePrefix("198.51.100.0/24").Contains(addr) && !netip.MustParsePrefix("2001:db8:eb::/64").Contains(addr) {
			t.Errorf("address %s is outside the test prefixes", addr)
		}
		reachInside(t, name, addr)
	}
	inside := exec.Command("ip", "netns", "exec", name, "sleep", "60")
	if err := inside.Start(); err != nil {
		t.Fatal(err)
	}
	go inside.Wait()
	list, _ := exec.Command(testhostScript, "list").Output()
	held := regexp.MustCompile(regexp.QuoteMeta(name) + ` \(held by pid (\d+)\)`).FindSubmatch(list)
	if held == nil {
		t.Fatalf("list does not show %s:\n%s", name, list)
	}
	var holder int
	fmt.Sscan(string(held[1]), &holder)

	if out, err := exec.Command(testhostScript, "down", name).CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	testhostGone(t, name, link, inside.Process.Pid, holder)
}

// reachInside listens in netns name and dials addr there from the test's
// namespace.
func reachInside(t *testing.T, name string, addr netip.Addr) {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	defer ns.Close()
	lnc := make(chan net.Listener, 1)
	go func() {
		// The thread stays locked, and exits with the goroutine, unless it
		// gets back to the test's namespace.
		runtime.LockOSThread()
		orig, _ := netns.Get()
		defer orig.Close()
		if netns.Set(ns) != nil {
			lnc <- nil
			return
		}
		ln, _ := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		lnc <- ln
	}()
	ln := <-lnc
	if ln == nil {
		t.Fatalf("listen on %s in %s", addr, name)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("inside\n"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("reach %s in %s: %v", ln.Addr(), name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 7)
	if n, _ := c.Read(b); string(b[:n]) != "inside\n" {
		t.Errorf("from %s in %s: got %q, want %q", ln.Addr(), name, b[:n], "inside\n")
	}
}

// testhostGone checks that nothing is left of host name: its namespace,
// its veth (link on this side), its slot's lock and that lock's holder, and
// the process (pid) that ran inside.
func testhostGone(t *testing.T, name, link string, pid, holder int) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\b`).Match(out) {
		t.Errorf("ip netns list still lists %s:\n%s", name, out)
	}
	if out, err := exec.Command("ip", "link", "show", link).CombinedOutput(); err == nil {
		t.Errorf("ip link still shows %s:\n%s", link, out)
	}
	locks, _ := filepath.Glob("/run/lock/ebpfjail-testhost-*.lock")
	for _, l := range locks {
		b, _ := os.ReadFile(l)
		holder, host, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if host == name {
			t.Errorf("%s still reserves a slot for %s (holder %s)", l, name, holder)
		}
	}
	if !gone(holder) {
		t.Errorf("the holder of %s's slot lock (pid %d) survived down", name, holder)
	}
	if !gone(pid) {
		t.Errorf("the process that ran in %s (pid %d) survived down", name, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
