//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// collectRefused closes w after the jail's program ran and returns every
// event, one line each.
func collectRefused(t *testing.T, w *RefusedWatcher) []Refused {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out []Refused
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := w.Next()
		if errors.Is(err, ringbuf.ErrClosed) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	t.Fatal("refused events never ended")
	return nil
}

func refusedLine(r Refused) string {
	return fmt.Sprintf("%s %s %s %s %s n=%d pid>0=%v comm=%s (%s)", r.Op, r.Family, r.SockType, r.Proto, r.Dst, r.Count, r.PID > 0, r.Comm, r.Reason)
}

// What the kernel refuses is reported with the process, the socket and the
// destination, while the attempt still fails; a burst of the same attempt
// is one event plus one counted event.
func TestPrivilegedRefusedAttemptsAreReported(t *testing.T) {
	k := newKernelJail(t)
	w, err := k.objs.WatchRefused(true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.python(t, `
import socket, errno
def try_(what, f):
    try:
        f(); print(what, "ALLOWED")
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
try_("udp-connect", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("198.51.100.77", 443)))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    try_("udp-sendto", lambda: s.sendto(b"x", ("198.51.100.77", 9999)))
try_("udp6-sendto", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", ("2001:db8:eb::77", 5353)))
try_("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
`)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(out, "ALLOWED") {
		t.Fatalf("an attempt got through: %s", out)
	}
	// Unprivileged, the kernel refuses a raw socket before the cgroup hook
	// (no CAP_NET_RAW), and seccomp would refuse a packet socket: the
	// socket() observer reports them.
	out, err = k.run(t, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", `
import socket
try:
    socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); print("raw6 ALLOWED")
except OSError as e:
    print("raw6", e.errno)`)
	if err != nil || strings.Contains(out, "ALLOWED") {
		t.Fatalf("unprivileged raw socket: %v: %s", err, out)
	}
	var lines []string
	for _, r := range collectRefused(t, w) {
		lines = append(lines, refusedLine(r))
	}
	got := strings.Join(lines, "\n")
	want := []string{
		"connect inet dgram udp 198.51.100.77:443 n=1 pid>0=true comm=python3 (UDP is refused except DNS (port 53))",
		"sendmsg inet dgram udp 198.51.100.77:9999 n=1 pid>0=true comm=python3",
		"sendmsg inet dgram udp 198.51.100.77:9999 n=49 pid>0=true comm=python3",
		"sendmsg inet6 dgram udp [2001:db8:eb::77]:5353 n=1 pid>0=true",
		"socket inet raw icmp  n=1 pid>0=true comm=python3 (only TCP and UDP sockets)",
	}
	want = append(want, "socket inet6 raw icmpv6  n=1 pid>0=true comm=python3 (only TCP and UDP sockets)")
	for _, want := range want {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q\ngot:\n%s", want, got)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d events, want %d:\n%s", len(lines), len(want), got)
	}
}

// A unix address on the deny list is reported by path; packets from
// another host are counted per source, not reported one by one.
func TestPrivilegedRefusedUnixAndInboundAreReported(t *testing.T) {
	k := newKernelJail(t)
	h := testutil.NewHost(t)
	if len(k.links.Missing()) > 0 {
		t.Skipf("no cgroup unix hooks: %v", k.links.Missing())
	}
	denied := filepath.Join(t.TempDir(), "denied.sock")
	if err := k.objs.DenyUnix([]string{denied}); err != nil {
		t.Fatal(err)
	}
	w, err := k.objs.WatchRefused(false)
	if err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	ready := filepath.Join(t.TempDir(), "ready")
	done := make(chan string, 1)
	go func() {
		out, err := k.python(t, `
import socket, sys, time
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(sys.argv[1]); print("unix ALLOWED")
except OSError as e:
    print("unix", e.errno)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(0.2)
open(sys.argv[3], "w").close()
end = time.time() + 2
while time.time() < end:
    try:
        print("received", s.recv(100)); break
    except socket.timeout:
        pass
`, denied, strconv.Itoa(port), ready)
		done <- fmt.Sprintf("%s %v", out, err)
	}()
	waitFile(t, ready)
	c, err := h.Dial("udp", netip.AddrPortFrom(h.HostIPv4, uint16(port)).String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.Write([]byte("knock"))
	}
	c.Close()
	out := <-done
	if strings.Contains(out, "ALLOWED") || strings.Contains(out, "received") {
		t.Fatalf("got through: %s", out)
	}
	var unixSeen bool
	packets := 0
	var all []string
	for _, r := range collectRefused(t, w) {
		all = append(all, refusedLine(r))
		switch {
		case r.Op == "connect" && r.Family == "unix" && r.SockType == "stream" && r.Dst == denied && r.PID > 0:
			unixSeen = true
		case r.Op == "inbound" && r.Family == "inet" && r.Proto == "udp" && r.Dst == h.IPv4.String():
			packets += r.Count
		}
	}
	if !unixSeen || packets != 5 {
		t.Errorf("unix connect reported %v, inbound packets counted %d (want 5); events:\n%s", unixSeen, packets, strings.Join(all, "\n"))
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for range 200 {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// A flood of refused sends costs a bounded number of events, and every
// attempt is still counted: by its event, as a repeat, or as dropped.
func TestPrivilegedRefusedFloodIsCountedNotUnbounded(t *testing.T) {
	k := newKernelJail(t)
	w, err := k.objs.WatchRefused(false)
	if err != nil {
		t.Fatal(err)
	}
	const sends = 20000
	out, err := k.python(t, `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = 0
for i in range(int(sys.argv[1])):
    try:
        s.sendto(b"x", ("198.51.100.77", 9999))
    except OSError:
        n += 1
print("refused", n)
`, strconv.Itoa(sends))
	if err != nil || !strings.Contains(out, fmt.Sprintf("refused %d", sends)) {
		t.Fatalf("%v: %s", err, out)
	}
	events := collectRefused(t, w)
	total := 0
	for _, r := range events {
		total += r.Count
	}
	for _, r := range events {
		t.Logf("%s", refusedLine(r))
	}
	if total != sends {
		t.Errorf("counted %d attempts, want %d", total, sends)
	}
	if len(events) > 1000 {
		t.Errorf("%d events for one kind of attempt, want a bounded few", len(events))
	}
}
