package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// recordingServer listens on TCP and UDP, on 0.0.0.0 and [::] (v6only),
// at one port, and writes a line per connection or datagram it receives to
// a file: what reached it, whatever any client believes. It stops when the
// stop file appears (or after 60 s).
const recordingServer = `
import os, select, socket, sys, time
port, rec, ready, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def sock(fam, typ):
    s = socket.socket(fam, typ)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("0.0.0.0" if fam == socket.AF_INET else "::", port))
    if typ == socket.SOCK_STREAM:
        s.listen(16)
    return s
tcp = [sock(socket.AF_INET, socket.SOCK_STREAM), sock(socket.AF_INET6, socket.SOCK_STREAM)]
udp = [sock(socket.AF_INET, socket.SOCK_DGRAM), sock(socket.AF_INET6, socket.SOCK_DGRAM)]
out = open(rec, "a", buffering=1)
open(ready, "w").close()
deadline = time.time() + 60
while not os.path.exists(stop) and time.time() < deadline:
    r, _, _ = select.select(tcp + udp, [], [], 0.05)
    for s in r:
        if s in tcp:
            c, peer = s.accept()
            c.settimeout(2)
            try:
                data = c.recv(256)
                c.sendall(b"got it")
            except OSError:
                data = b""
            c.close()
            out.write("tcp %s %s\n" % (peer[0], data.decode(errors="replace").strip()))
        else:
            data, peer = s.recvfrom(2048)
            out.write("udp %s %s\n" % (peer[0], data.decode(errors="replace").strip()))
`

// inboundServer is a recordingServer run in the background, jailed or not.
type inboundServer struct {
	port      int
	rec, stop string
	done      chan result
}

// startInboundServer runs recordingServer through argv (ebpfjail ... --,
// or nothing for the control) and waits until it listens.
func startInboundServer(t *testing.T, argv ...string) *inboundServer {
	t.Helper()
	dir := sharedDir(t)
	s := &inboundServer{port: freeTCPPort(t), rec: filepath.Join(dir, "received"), stop: filepath.Join(dir, "stop"), done: make(chan result, 1)}
	ready := filepath.Join(dir, "ready")
	args := append(append([]string{}, argv...), python(t), "-c", recordingServer, fmt.Sprint(s.port), s.rec, ready, s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	testutil.SweepShared(t)
	cmd.Env = append(os.Environ(), owner(t))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		cmd.Wait()
		cancel()
		s.done <- result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	}()
	t.Cleanup(func() {
		os.WriteFile(s.stop, nil, 0o644)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(ready); err == nil {
			return s
		}
		select {
		case r := <-s.done:
			t.Fatalf("the server ended before it listened\n%s", r)
		case <-time.After(50 * time.Millisecond):
		}
		if i > 400 {
			t.Fatalf("the server did not listen within 20 s")
		}
	}
}

// finish stops the server and returns what it received and how its run
// ended.
func (s *inboundServer) finish(t *testing.T) (string, result) {
	t.Helper()
	if err := os.WriteFile(s.stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-s.done:
		s.done <- r // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}
	b, _ := os.ReadFile(s.rec)
	return string(b), r
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sendInbound sends tagged bytes to the server at port: from the test host
// (its namespace, through the veth, to the host side's addresses) and from
// this process over loopback, by TCP and UDP, IPv4 and IPv6. It returns
// the tags of each kind.
func sendInbound(t *testing.T, h *testutil.Host, port int) (remote, local []string) {
	t.Helper()
	type target struct {
		tag  string
		addr netip.Addr
		dial func(network, addr string, timeout time.Duration) (net.Conn, error)
	}
	targets := []target{
		{"remote-v4", h.HostIPv4, h.Dial}, {"remote-v6", h.HostIPv6, h.Dial},
		// The host's own clients: over loopback, and to an address of the
		// host (the kernel routes that over lo too).
		{"local-v4", netip.MustParseAddr("127.0.0.1"), net.DialTimeout},
		{"local-v6", netip.IPv6Loopback(), net.DialTimeout},
		{"local-hostaddr", h.HostIPv4, net.DialTimeout},
	}
	for _, tg := range targets {
		ap := netip.AddrPortFrom(tg.addr, uint16(port)).String()
		if c, err := tg.dial("tcp", ap, 1500*time.Millisecond); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "tcp-%s\n", tg.tag)
			c.Read(make([]byte, 16))
			c.Close()
		} else {
			t.Logf("tcp %s to %s: %v", tg.tag, ap, err)
		}
		if c, err := tg.dial("udp", ap, time.Second); err == nil {
			for range 3 {
				fmt.Fprintf(c, "udp-%s", tg.tag)
				time.Sleep(20 * time.Millisecond)
			}
			c.Close()
		}
		tags := []string{"tcp-" + tg.tag, "udp-" + tg.tag}
		if strings.HasPrefix(tg.tag, "remote") {
			remote = append(remote, tags...)
		} else {
			local = append(local, tags...)
		}
	}
	time.Sleep(300 * time.Millisecond) // the last datagrams
	return remote, local
}

// arrived says which of tags the server's record holds.
func arrived(record string, tags []string) (in, out []string) {
	for _, tag := range tags {
		if strings.Contains(record, " "+tag+"\n") {
			in = append(in, tag)
		} else {
			out = append(out, tag)
		}
	}
	return in, out
}

func TestPrivilegedInboundFromAnotherHostNeverReachesAJailedServer(t *testing.T) {
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)

	t.Run("control-unjailed", func(t *testing.T) {
		s := startInboundServer(t)
		remote, local := sendInbound(t, h, s.port)
		rec, _ := s.finish(t)
		if _, missing := arrived(rec, append(remote, local...)); len(missing) > 0 {
			t.Fatalf("outside the jail, the server did not receive %v: the attempt proves nothing\nreceived:\n%s", missing, rec)
		}
	})
	t.Run("jailed", func(t *testing.T) {
		s := startInboundServer(t, bin, "-v", "--user", "nobody", "--js", "true", "--")
		remote, local := sendInbound(t, h, s.port)
		rec, r := s.finish(t)
		if got, _ := arrived(rec, remote); len(got) > 0 {
			t.Errorf("from another host, the jailed server received %v; want nothing\nreceived:\n%s\n%s", got, rec, r)
		}
		// The host's own clients (a browser on a jailed dev server) still
		// get in over loopback.
		if _, missing := arrived(rec, local); len(missing) > 0 {
			t.Errorf("over loopback, the jailed server did not receive %v; want all of %v\nreceived:\n%s\n%s", missing, local, rec, r)
		}
	})
	t.Run("jailed-allow-inbound", func(t *testing.T) {
		s := startInboundServer(t, bin, "--allow-inbound", "--user", "nobody", "--js", "true", "--")
		remote, local := sendInbound(t, h, s.port)
		rec, r := s.finish(t)
		if _, missing := arrived(rec, append(remote, local...)); len(missing) > 0 {
			t.Errorf("with --allow-inbound, the jailed server did not receive %v\nreceived:\n%s\n%s", missing, rec, r)
		}
		contains(t, "warning for --allow-inbound", r.stderr, "warning: --allow-inbound")
	})
}
