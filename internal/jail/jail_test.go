//go:build linux

package jail

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseStartTimeSurvivesOddComm(t *testing.T) {
	stat := "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	got, err := parseStartTime(stat)
	if err != nil || got != 987654 {
		t.Errorf("got %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTime("1234 (x) S 1"); err == nil {
		t.Error("short stat: got nil error")
	}
}

func TestUserEnvReplacesIdentity(t *testing.T) {
	env := userEnv([]string{"HOME=/root", "PATH=/bin", "USER=root", "LOGNAME=root", "SUDO_USER=alice"},
		&User{Name: "alice", Home: "/home/alice"})
	want := []string{"PATH=/bin", "SUDO_USER=alice", "HOME=/home/alice", "USER=alice", "LOGNAME=alice"}
	if !slices.Equal(env, want) {
		t.Errorf("got %q, want %q", env, want)
	}
}

func TestLookPathTellsNotFoundFromNotExecutable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755)
	env := []string{"PATH=" + dir}
	if p, err := lookPath("tool", env); err != nil || p != filepath.Join(dir, "tool") {
		t.Errorf("tool: got %q, %v", p, err)
	}
	for name, want := range map[string]error{
		"nope":                        ErrNotFound,
		"plain":                       ErrNotExecutable,
		filepath.Join(dir, "plain"):   ErrNotExecutable,
		filepath.Join(dir, "missing"): ErrNotFound,
		dir:                           ErrNotExecutable,
	} {
		if _, err := lookPath(name, env); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}

func TestResolveUserNeverPicksRootImplicitly(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := ResolveUser("", env(nil), 0); !errors.Is(err, ErrRootChild) {
		t.Errorf("root without sudo: got %v, want ErrRootChild", err)
	}
	if _, err := ResolveUser("", env(map[string]string{"SUDO_UID": "0", "SUDO_GID": "0"}), 0); !errors.Is(err, ErrRootChild) {
		t.Errorf("sudo from root: got %v, want ErrRootChild", err)
	}
	u, err := ResolveUser("root", env(nil), 0)
	if err != nil || u.UID != 0 {
		t.Errorf("--user root: got %+v, %v", u, err)
	}
	u, err = ResolveUser("", env(map[string]string{"SUDO_UID": "65534", "SUDO_GID": "65534", "SUDO_USER": "nobody"}), 0)
	if err != nil || u.UID != 65534 || u.GID != 65534 {
		t.Errorf("sudo from nobody: got %+v, %v", u, err)
	}
	u, err = ResolveUser("65534", env(nil), 0)
	if err != nil || u.UID != 65534 || u.Name != "nobody" {
		t.Errorf("--user 65534: got %+v, %v", u, err)
	}
	if _, err := ResolveUser("no-such-user-ebpfjail", env(nil), 0); err == nil {
		t.Error("unknown user: got nil error")
	}
}
