package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPrivilegedLockSharedAndExclusive(t *testing.T) {
	RequireRoot(t)
	name := fmt.Sprintf("unit-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(filepath.Join(lockDir, "ebpfjail-test-"+name+".lock")) })
	first := Lock(t, name, true)
	second := Lock(t, name, true) // shared: no wait
	got := make(chan struct{})
	go func() {
		Lock(t, name, false)()
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("exclusive lock taken while two shared ones are held")
	case <-time.After(200 * time.Millisecond):
	}
	first()
	second()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("exclusive lock not taken after the shared ones were released")
	}
}
