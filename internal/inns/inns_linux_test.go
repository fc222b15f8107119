package inns

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

func TestPrivilegedListenerOpenedInANamespaceStaysThere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New() // the thread is in it now
	if err == nil {
		err = netns.Set(orig)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	defer ns.Close()
	var ln net.Listener
	if err := Do(ns, func() (err error) {
		lo, _ := netns.GetFromPath("/proc/thread-self/ns/net")
		defer lo.Close()
		if !lo.Equal(ns) {
			t.Errorf("fn ran outside the namespace")
		}
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err == nil {
		defer ln.Close()
	}
	if ln == nil {
		t.Skip("no loopback address in a new namespace's lo (down)")
	}
	if c, err := net.Dial("tcp4", ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("dialled %s from the host's namespace: want the listener only in the new one", ln.Addr())
	}
	now, _ := netns.Get()
	defer now.Close()
	if !now.Equal(orig) {
		t.Errorf("the thread stayed in the namespace after Do")
	}
}
