//go:build linux

package control

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func TestStateDirIsTheJailsOne(t *testing.T) {
	if want := filepath.Join(jail.RunDir, "jails"); StateDir != want {
		t.Errorf("StateDir %q, want %q", StateDir, want)
	}
}

func listen(t *testing.T, jailed func(int) bool) (*Hub, *Server, string) {
	dir, err := os.MkdirTemp("", "control-test-") // root's
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := NewHub([]string{"curl", "http://x.test/"}, "nobody", 65534, os.Getpid())
	h.SetJail("1-ab")
	srv, err := Listen(h, SocketPath(dir, "1-ab"), jailed, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return h, srv, dir
}

func TestPrivilegedSubscriberGetsStatusEventsAndEnd(t *testing.T) {
	needRoot(t)
	h, srv, dir := listen(t, func(int) bool { return false })
	ctx := context.Background()
	c, st, err := subscribe(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st.ID != "1-ab" || st.User != "nobody" || st.Peers.Accepted != 1 {
		t.Errorf("status %+v", st)
	}
	h.Emit(req(event.Deny))
	status := 7
	h.End(&status)
	m, err := c.Next()
	if err != nil || m.Event == nil || m.Event.Verdict != event.Deny {
		t.Fatalf("got %+v, %v; want the event", m, err)
	}
	m, err = c.Next()
	if err != nil || m.End == nil || *m.End.ExitStatus != 7 || m.End.Status.Counts.Denied != 1 {
		t.Fatalf("got %+v, %v; want the end", m, err)
	}
	jails, _ := Running(ctx, dir, "")
	if len(jails) != 1 || jails[0].ID != "1-ab" {
		t.Errorf("Running = %+v", jails)
	}
	fi, err := os.Stat(srv.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestPrivilegedServerRefusesOtherUsersAndJailedPeers(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3 for the peers")
	}
	h, srv, dir := listen(t, func(pid int) bool { return pid != os.Getpid() })
	os.Chmod(dir, 0o755)
	os.Chmod(srv.Path(), 0o777) // only the server's own check is left
	// A root process that is "in a jail" (not this one), and nobody.
	for _, cred := range []*syscall.Credential{nil, {Uid: 65534, Gid: 65534}} {
		cmd := exec.Command("/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{\"v\":1,\"op\":\"status\"}\\n'); print(s.recv(100))", srv.Path())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "status") {
			t.Errorf("a refused peer (%v) got %s", cred, out)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for h.Status().Peers.Refused < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := h.Status().Peers; p.Refused != 2 || p.Accepted != 0 {
		t.Errorf("peers %+v, want 2 refused and none accepted", p)
	}
}

func TestPrivilegedListenRestrictsTheDirectory(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	srv, err := Listen(NewHub(nil, "", 0, 1), SocketPath(dir, "x"), func(int) bool { return true }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Lstat(SocketPath(dir, "x")); err == nil {
		t.Error("the socket is left after Close")
	}
}
