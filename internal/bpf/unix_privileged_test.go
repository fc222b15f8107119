//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// unixClient tries each "kind:address" of its arguments and prints
// "kind:address OK" or "kind:address EPERM". An address "@name" is abstract;
// a "+junk" suffix is sent after a NUL that ends the path.
const unixClient = `
import socket, errno, sys
def addr(a):
    if a.startswith("@"):
        return "\0" + a[1:]
    if "+" in a:
        path, junk = a.split("+", 1)
        return path.encode() + b"\0" + junk.encode()
    return a
def stream(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(a); s.close()
def dgram_connect(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(a); s.send(b"c"); s.close()
def dgram_sendto(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"s", a); s.close()
for arg in sys.argv[1:]:
    kind, a = arg.split(":", 1)
    try:
        {"stream": stream, "dgram-connect": dgram_connect, "dgram-sendto": dgram_sendto}[kind](addr(a))
        print(arg, "OK")
    except OSError as e:
        print(arg, errno.errorcode.get(e.errno, e.errno))
`

// unixSockets listens on a stream and a datagram socket at each name (a
// path under a fresh directory, or "@name" for an abstract one) and returns
// their addresses: stream[name], dgram[name].
func unixSockets(t *testing.T, names ...string) (stream, dgram map[string]string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ebpfjail-unix")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	stream, dgram = map[string]string{}, map[string]string{}
	for _, n := range names {
		s, d := filepath.Join(dir, n+".sock"), filepath.Join(dir, n+".dgram")
		if strings.HasPrefix(n, "@") {
			s, d = n+"-stream", n+"-dgram"
		}
		ln, err := net.Listen("unix", s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() { // accept and drop, so the backlog never fills
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		pc, err := net.ListenPacket("unixgram", d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() { // drain
			buf := make([]byte, 16)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		stream[n], dgram[n] = s, d
	}
	return stream, dgram
}

// unixAttempts are every way of reaching the stream and datagram sockets at
// one address.
func unixAttempts(stream, dgram string) []string {
	return []string{"stream:" + stream, "dgram-connect:" + dgram, "dgram-sendto:" + dgram}
}

func wantUnix(t *testing.T, out string, attempts []string, want string) {
	t.Helper()
	for _, a := range attempts {
		if !strings.Contains(out, a+" "+want+"\n") {
			t.Errorf("%s: want %s, got output:\n%s", a, want, out)
		}
	}
}

func TestPrivilegedUnixDenyListIsEnforcedInTheJailOnly(t *testing.T) {
	k := newKernelJail(t)
	if m := k.links.Missing(); len(m) > 0 {
		t.Fatalf("this kernel has the unix hooks (6.18), but Missing = %v", m)
	}
	abstract := fmt.Sprintf("@ebpfjail-test-%d", rand.Uint64())
	stream, dgram := unixSockets(t, "denied", "allowed", abstract, abstract+"-ok")
	if err := k.objs.DenyUnix([]string{
		stream["denied"], dgram["denied"], stream[abstract], dgram[abstract],
	}); err != nil {
		t.Fatal(err)
	}

	var denied, allowed []string
	denied = append(denied, unixAttempts(stream["denied"], dgram["denied"])...)
	denied = append(denied, unixAttempts(stream[abstract], dgram[abstract])...)
	// What follows a NUL is not part of the path for the kernel: no bypass.
	denied = append(denied, unixAttempts(stream["denied"]+"+junk", dgram["denied"]+"+junk")...)
	allowed = append(allowed, unixAttempts(stream["allowed"], dgram["allowed"])...)
	allowed = append(allowed, unixAttempts(stream[abstract+"-ok"], dgram[abstract+"-ok"])...)

	out, err := k.python(t, unixClient, append(slices.Clone(denied), allowed...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantUnix(t, out, denied, "EPERM")
	wantUnix(t, out, allowed, "OK")

	stats, err := k.objs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := stats["unix_denied"]; got != uint64(len(denied)) {
		t.Errorf("unix_denied: got %d, want %d", got, len(denied))
	}

	// Outside the jail's cgroup nothing changes: this test process and a
	// python3 started normally both get through.
	for _, a := range []struct{ network, addr string }{
		{"unix", stream["denied"]}, {"unixgram", dgram["denied"]},
		{"unix", stream[abstract]}, {"unixgram", dgram[abstract]},
	} {
		c, err := net.DialTimeout(a.network, a.addr, 5*time.Second)
		if err != nil {
			t.Errorf("dial %s %s outside the jail: %v", a.network, a.addr, err)
			continue
		}
		// (the stream listeners close what they accept: connecting is enough)
		if _, err := c.Write([]byte("x")); a.network == "unixgram" && err != nil {
			t.Errorf("write %s %s outside the jail: %v", a.network, a.addr, err)
		}
		c.Close()
	}
	outside, err := exec.Command("python3", append([]string{"-c", unixClient}, denied...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, outside)
	}
	wantUnix(t, string(outside), denied, "OK")
}

// An older kernel (no unix hooks, no BPF LSM) loads and attaches
// everything else and names what is missing; the deny list is kept but not
// enforced.
func TestPrivilegedUnixHooksAreOptional(t *testing.T) {
	withoutUnixHooks(t)
	withoutGuard(t)

	k := newKernelJail(t)
	if got, want := k.links.Missing(), []string{"connect_unix", "sendmsg_unix"}; !slices.Equal(got, want) {
		t.Errorf("Missing: got %v, want %v", got, want)
	}
	for _, name := range k.links.Missing() {
		if err := k.links.MissingReason(name); !errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("MissingReason(%s): got %v, want ErrNotSupported", name, err)
		}
	}
	if err := k.links.UnixGuard(); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("UnixGuard: got %v, want ErrNotSupported", err)
	}
	stream, dgram := unixSockets(t, "denied")
	if err := k.objs.DenyUnix([]string{stream["denied"], dgram["denied"]}); err != nil {
		t.Fatal(err)
	}
	attempts := unixAttempts(stream["denied"], dgram["denied"])
	out, err := k.python(t, unixClient, attempts...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantUnix(t, out, attempts, "OK")

	// The rest of the jail is in place.
	out, err = k.python(t, `
import socket, errno
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("203.0.113.99", 443)); print("udp ALLOWED")
except OSError as e:
    print("udp", errno.errorcode.get(e.errno, e.errno))
`)
	if err != nil || !strings.Contains(out, "udp EPERM") {
		t.Errorf("udp in a jail without unix hooks: got %q (%v), want EPERM", out, err)
	}

	dir := filepath.Join(filepath.Dir(k.cgroup), "ebpfjail-bpfprobe-"+filepath.Base(t.TempDir()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	for _, r := range k.objs.ProbeAttach(dir) {
		switch r.Name {
		case "connect_unix", "sendmsg_unix":
			if !r.Optional || !errors.Is(r.Err, ebpf.ErrNotSupported) {
				t.Errorf("probe %s: got optional %v, err %v; want optional, ErrNotSupported", r.Name, r.Optional, r.Err)
			}
		default:
			if r.Optional || r.Err != nil {
				t.Errorf("probe %s: got optional %v, err %v; want required, nil", r.Name, r.Optional, r.Err)
			}
		}
	}
}

func TestPrivilegedProbeAttachReportsUnixHooks(t *testing.T) {
	k := newKernelJail(t)
	dir := filepath.Join(filepath.Dir(k.cgroup), "ebpfjail-bpfprobe-"+filepath.Base(t.TempDir()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	var names []string
	for _, r := range k.objs.ProbeAttach(dir) {
		names = append(names, r.Name)
		if r.Err != nil {
			t.Errorf("probe %s: %v", r.Name, r.Err)
		}
		if want := r.Name == "connect_unix" || r.Name == "sendmsg_unix"; r.Optional != want {
			t.Errorf("probe %s: optional %v, want %v", r.Name, r.Optional, want)
		}
	}
	for _, n := range []string{"connect_unix", "sendmsg_unix"} {
		if !slices.Contains(names, n) {
			t.Errorf("ProbeAttach: no %s in %v", n, names)
		}
	}
}

func TestPrivilegedDenyUnixRefusesMoreThanTheMapHolds(t *testing.T) {
	testutil.RequireRoot(t)
	objs, err := Load(Config{ListenPort4: 1, ListenPort6: 1, DNSPort4: 1, DNSPort6: 1})
	if err != nil {
		t.Fatalf("load: %+v", err)
	}
	defer objs.Close()
	paths := make([]string, maxUnixDeny+1)
	for i := range paths {
		paths[i] = fmt.Sprintf("/run/ebpfjail-test/%d.sock", i)
	}
	if err := objs.DenyUnix(paths[:maxUnixDeny]); err != nil {
		t.Fatal(err)
	}
	if err := objs.DenyUnix(paths[:maxUnixDeny]); err != nil {
		t.Errorf("adding the same paths again: %v", err)
	}
	if err := objs.DenyUnix(paths); err == nil || !strings.Contains(err.Error(), "more than 1024") {
		t.Errorf("one path too many: got %v, want an error naming the limit", err)
	}
	if err := objs.DenyUnix([]string{"relative.sock"}); err == nil {
		t.Error("relative path: got nil error")
	}
}
