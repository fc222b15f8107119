package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The modes that need no jail (--server, --weak, --test, ca) build for
// systems that cannot jail, whose binary says that jailing needs Linux
// (jail_other.go). Built here so a Linux-only call in a portable file
// fails a test rather than a macOS user's build.
func TestBuildsForOtherSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the binary (-short)")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	for _, goos := range []string{"darwin", "freebsd"} {
		t.Run(goos, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ebpfjail")
			cmd := exec.Command(gobin, "build", "-o", out, ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s go build: %v\n%s", goos, err, b)
			}
		})
	}
}
