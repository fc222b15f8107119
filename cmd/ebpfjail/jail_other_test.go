//go:build !linux

package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// Off Linux the modes that need a jail fail with status 125, say that they
// need Linux, and point to the modes that work.
func TestJailModesSayTheyNeedLinux(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--", "true"}, "jailing a command needs Linux"},
		{[]string{"check"}, "check needs Linux"},
		{[]string{"check", "--attack"}, "check --attack needs Linux"},
		{[]string{"--cleanup"}, "--cleanup needs Linux"},
	} {
		status, stderr := runMain(t, tc.args)
		first, rest, _ := strings.Cut(stderr, "\n")
		if status != exitFailure || first != "ebpfjail: error: "+tc.want || !strings.HasPrefix(rest, "ebpfjail: hint: ") {
			t.Errorf("%q: got status %d, stderr %q; want %d, %q and a hint", tc.args, status, stderr, exitFailure, "ebpfjail: error: "+tc.want)
		}
	}
}

// runMain runs ebpfjail with args and returns its status and stderr.
func runMain(t *testing.T, args []string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	status := mainStatus(args)
	os.Stderr = stderr
	w.Close()
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return status, string(b)
}
