package tests

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// unixServer listens on a unix socket at path (world-connectable) until
// the test ends.
// lockStandIn keeps another test run from creating or removing a stand-in
// at path, a fixed path outside the test's own directories, until the test
// ends.
func lockStandIn(t *testing.T, path string) {
	t.Helper()
	testutil.Lock(t, "standin-"+filepath.Base(path), false)
}

func unixServer(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	t.Cleanup(func() { ln.Close(); os.Remove(path) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("reached\n"))
			c.Close()
		}
	}()
}

const unixClient = `import socket, sys, errno
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p); print(p, s.recv(20).decode().strip())
    except OSError as e:
        print(p, errno.errorcode.get(e.errno, e.errno))`

func TestPrivilegedUnixSocketsLeadingOutAreDenied(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	denied, allowed := filepath.Join(dir, "engine.sock"), filepath.Join(dir, "app.sock")
	unixServer(t, denied)
	unixServer(t, allowed)
	r := jail(t, runOpts{}, "--user", "nobody", "--deny-unix", denied, "--", python(t), "-c", unixClient, denied, allowed)
	contains(t, "denied socket", r.stdout, denied+" EPERM")
	contains(t, "allowed socket", r.stdout, allowed+" reached")

	// A default-listed path (a container engine's), created for the test
	// only when the machine has none.
	docker := "/run/docker.sock"
	lockStandIn(t, docker)
	if _, err := os.Stat(docker); err == nil {
		t.Logf("%s exists: not testing the default list on it", docker)
	} else {
		unixServer(t, docker)
		r = jail(t, runOpts{}, "--user", "nobody", "--", python(t), "-c", unixClient, docker)
		contains(t, "default list", r.stdout, docker+" EPERM")
		r = jail(t, runOpts{}, "--user", "nobody", "--allow-unix", docker, "--", python(t), "-c", unixClient, docker)
		contains(t, "--allow-unix", r.stdout, docker+" reached")
	}
	if strings.Contains(r.stderr, "unix sockets outside the jail") {
		t.Logf("note: %s", r.stderr)
	}
	noJailsLeft(t)
}
