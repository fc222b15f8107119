//go:build linux

package bpf

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// kernelJail is a scratch cgroup with the programs attached, a TCP listener
// on both loopbacks and a UDP "shim" on both loopbacks.
type kernelJail struct {
	objs   *Objects
	links  *Links
	cgroup string
	tcp    [2]*net.TCPListener
	udp    [2]*net.UDPConn
}

func newKernelJail(t testing.TB) *kernelJail {
	t.Helper()
	testutil.RequireRoot(t)
	mnt := testutil.Cgroup2Mount(t)
	k := &kernelJail{cgroup: filepath.Join(mnt, "ebpfjail-bpftest-"+filepath.Base(t.TempDir()))}
	for i, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		k.tcp[i] = ln.(*net.TCPListener)
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		k.udp[i] = pc.(*net.UDPConn)
	}
	port := func(a net.Addr) uint16 { return uint16(a.(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()) }
	objs, err := Load(Config{
		ListenPort4: port(k.tcp[0].Addr()), ListenPort6: port(k.tcp[1].Addr()),
		DNSPort4: port(k.udp[0].LocalAddr()), DNSPort6: port(k.udp[1].LocalAddr()),
	})
	if err != nil {
		t.Fatalf("load: %+v", err)
	}
	t.Cleanup(func() { objs.Close() })
	k.objs = objs
	if err := os.Mkdir(k.cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	links, err := objs.Attach(k.cgroup)
	if err != nil {
		os.Remove(k.cgroup)
		t.Fatal(err)
	}
	k.links = links
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(k.cgroup, "cgroup.kill"), []byte("1"), 0)
		links.Close()
		for range 100 {
			if err := syscall.Rmdir(k.cgroup); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", k.cgroup)
	})
	return k
}

// python runs a python3 program inside the cgroup and returns its output.
func (k *kernelJail) python(t *testing.T, prog string, args ...string) (string, error) {
	t.Helper()
	return k.run(t, "python3", append([]string{"-c", prog}, args...)...)
}

// run runs a command inside the cgroup and returns its output.
func (k *kernelJail) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cg, err := os.Open(k.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("python timed out: %s", out.String())
		return "", nil
	}
}

const tcpClient = `
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.connect((sys.argv[1], int(sys.argv[2])))
print("peer", s.getpeername()[0], s.getpeername()[1])
s.sendall(b"ping")
print("reply", s.recv(100).decode())
`

func TestPrivilegedConnectIsSteeredAndAttributed(t *testing.T) {
	k := newKernelJail(t)
	for _, tc := range []struct{ name, addr, want string }{
		{"ipv4", "203.0.113.99", "203.0.113.99"},
		{"ipv6", "2001:db8:eb::99", "2001:db8:eb::99"},
		{"v4-mapped", "::ffff:203.0.113.99", "203.0.113.99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := k.tcp[0]
			if tc.name == "ipv6" {
				ln = k.tcp[1]
			}
			type accepted struct {
				o   Origin
				err error
			}
			ch := make(chan accepted, 1)
			go func() {
				ln.SetDeadline(time.Now().Add(10 * time.Second))
				c, err := ln.AcceptTCP()
				if err != nil {
					ch <- accepted{err: err}
					return
				}
				defer c.Close()
				peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
				o, err := k.objs.OrigDst(netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()))
				buf := make([]byte, 4)
				c.Read(buf)
				c.Write([]byte("pong"))
				ch <- accepted{o, err}
			}()
			out, err := k.python(t, tcpClient, tc.addr, "8080")
			if err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			a := <-ch
			if a.err != nil {
				t.Fatalf("accept/OrigDst: %v", a.err)
			}
			want := netip.AddrPortFrom(netip.MustParseAddr(tc.want), 8080)
			if a.o.Dst != want || a.o.Comm != "python3" || a.o.PID == 0 || a.o.UID != 0 || a.o.Proto != 6 {
				t.Errorf("origin: got %+v, want dst %v comm python3", a.o, want)
			}
			// getpeername in the child shows what it asked for (v4-mapped stays mapped).
			if !strings.Contains(out, "peer "+tc.addr+" 8080") || !strings.Contains(out, "reply pong") {
				t.Errorf("client output: got %q, want peer %s 8080 and reply pong", out, tc.addr)
			}
			// The record is consumed: a second lookup misses.
			if _, err := k.objs.OrigDst(netip.MustParseAddrPort("127.0.0.1:1")); err == nil {
				t.Error("lookup of an unknown peer: got nil error")
			}
		})
	}
}

func TestPrivilegedNonDNSUDPAndRawSocketsAreRefused(t *testing.T) {
	k := newKernelJail(t)
	out, err := k.python(t, `
import socket, errno
def try_(what, f):
    try:
        f(); print(what, "ALLOWED")
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
try_("udp-connect", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("203.0.113.99", 443)))
try_("udp-sendto", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("203.0.113.99", 443)))
try_("udp6-sendto", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", ("2001:db8:eb::99", 443)))
try_("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
try_("raw6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
try_("sctp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132))
try_("mptcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262))
`)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, what := range []string{"udp-connect", "udp-sendto", "udp6-sendto", "raw", "raw6", "mptcp"} {
		if !strings.Contains(out, what+" EPERM") {
			t.Errorf("%s: got %q, want EPERM", what, out)
		}
	}
	// Without the sctp module the kernel refuses before the hook runs.
	if !strings.Contains(out, "sctp EPERM") && !strings.Contains(out, "sctp EPROTONOSUPPORT") {
		t.Errorf("sctp: got %q, want EPERM (or EPROTONOSUPPORT without the module)", out)
	}

	// ICMP ping sockets: the default ping_group_range already refuses them
	// (EACCES) before the hook runs, so open the range in a network
	// namespace of the child's own to show the hook refuses them too.
	out, err = k.run(t, "unshare", "-n", "sh", "-c", `echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range &&
python3 -c 'import socket, errno
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); print("ping ALLOWED")
except OSError as e:
    print("ping", errno.errorcode.get(e.errno, e.errno))'`)
	if err != nil || !strings.Contains(out, "ping EPERM") {
		t.Errorf("ping socket: got %q (%v), want EPERM", out, err)
	}
}

func TestPrivilegedDNSReachesTheShimAndRepliesLookLikeTheServer(t *testing.T) {
	k := newKernelJail(t)
	for i, server := range []string{"203.0.113.53", "2001:db8:eb::53"} {
		go func() {
			buf := make([]byte, 512)
			k.udp[i].SetReadDeadline(time.Now().Add(10 * time.Second))
			n, from, err := k.udp[i].ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			k.udp[i].WriteToUDPAddrPort(append([]byte("answer:"), buf[:n]...), from)
		}()
		out, err := k.python(t, `
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"query", (sys.argv[1], 53))
data, src = s.recvfrom(100)
print(data.decode(), "from", src[0], src[1])
`, server)
		if err != nil {
			t.Fatalf("%s: %v\n%s", server, err, out)
		}
		if want := "answer:query from " + server + " 53"; !strings.Contains(out, want) {
			t.Errorf("%s: got %q, want %q", server, out, want)
		}
	}
}
