//go:build linux

package bpf

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

// acceptOrigin accepts one connection on ln, answers "pong" to its 4-byte
// ping, and returns the kernel's record of it.
func acceptOrigin(k *kernelJail, ln *net.TCPListener) <-chan Origin {
	ch := make(chan Origin, 1)
	go func() {
		defer close(ch)
		ln.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		defer c.Close()
		peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		o, err := k.objs.OrigDst(netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()))
		c.Read(make([]byte, 4))
		c.Write([]byte("pong"))
		if err == nil {
			ch <- o
		}
	}()
	return ch
}

// debianPython is a python3 binary (a pyenv shim is a script that execs
// another program).
func debianPython(t *testing.T) string {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no " + py)
	}
	return py
}

// A forked child that did not exec is recorded with its parent's program
// and its parent's pid.
func TestPrivilegedOriginOfAForkedChildHasItsParentsExe(t *testing.T) {
	k := newKernelJail(t)
	if k.links.Identity() != nil {
		t.Skipf("no identity hooks: %v", k.links.Identity())
	}
	py := debianPython(t)
	ch := acceptOrigin(k, k.tcp[0])
	out, err := k.run(t, py, "-c", `
import os, socket
pid = os.fork()
if pid == 0:
    s = socket.create_connection(("203.0.113.99", 8080))
    s.sendall(b"ping"); s.recv(4)
    os._exit(0)
os.waitpid(pid, 0)
print(os.getpid(), pid)
`)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	o, ok := <-ch
	if !ok {
		t.Fatal("no record for the child's connection")
	}
	var parent, child uint32
	if f := strings.Fields(out); len(f) == 2 {
		p, _ := strconv.ParseUint(f[0], 10, 32)
		c, _ := strconv.ParseUint(f[1], 10, 32)
		parent, child = uint32(p), uint32(c)
	}
	if o.PID != child || o.PPID != parent || o.Exe != py || o.ExeFrom != origin.ExeKernel || o.ExeTruncated {
		t.Errorf("origin: got pid %d ppid %d exe %q from %v truncated %v, want pid %d ppid %d exe %q from kernel", o.PID, o.PPID, o.Exe, o.ExeFrom, o.ExeTruncated, child, parent, py)
	}
}

// A path longer than the kernel keeps is cut, and says so.
func TestPrivilegedOriginSaysWhenTheExeIsTruncated(t *testing.T) {
	k := newKernelJail(t)
	if k.links.Identity() != nil {
		t.Skipf("no identity hooks: %v", k.links.Identity())
	}
	py := debianPython(t)
	dir := t.TempDir()
	for range 6 {
		dir = filepath.Join(dir, strings.Repeat("d", 50))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "python3")
	b, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(long, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ch := acceptOrigin(k, k.tcp[0])
	if out, err := k.run(t, long, "-c", tcpClient, "203.0.113.99", "8080"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	o, ok := <-ch
	if !ok {
		t.Fatal("no record for the connection")
	}
	if want := long[:255]; o.Exe != want || !o.ExeTruncated || o.ExeFrom != origin.ExeKernel {
		t.Errorf("origin: got exe %q truncated %v from %v, want %q truncated", o.Exe, o.ExeTruncated, o.ExeFrom, want)
	}
}
