//go:build !linux

package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestJailModesSayTheyNeedLinux(t *testing.T) {
	for _, tc := range []struct {
		want string
		run  func() (int, error)
	}{
		{"jailing a command needs Linux", func() (int, error) { return runJail(&options{command: []string{"true"}}, nil) }},
		{"check needs Linux", func() (int, error) { return runCheck(io.Discard, nil) }},
		{"check --attack needs Linux", func() (int, error) { return runAttack(io.Discard, &options{}, nil) }},
		{"--cleanup needs Linux", func() (int, error) { return runCleanup(io.Discard, nil) }},
	} {
		_, err := tc.run()
		var e *exitError
		if !errors.As(err, &e) || e.code != exitFailure {
			t.Errorf("%s: got %v, want an error with status %d", tc.want, err, exitFailure)
			continue
		}
		var b bytes.Buffer
		printError(&b, e)
		if first, _, _ := strings.Cut(b.String(), "\n"); first != "ebpfjail: error: "+tc.want {
			t.Errorf("got %q, want %q", first, "ebpfjail: error: "+tc.want)
		}
		if !strings.Contains(b.String(), "ebpfjail: hint: ") {
			t.Errorf("%s: no hint in %q", tc.want, b.String())
		}
	}
}
