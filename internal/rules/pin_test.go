package rules

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// nobody is the unprivileged user the pinning tests run rule programs as.
const nobody = 65534

// userDir is a directory owned by nobody, as a jailed user's home would be.
func userDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a rule program as another user")
	}
	needSh(t)
	// Not t.TempDir: its parent is 0700, and the user must reach the file.
	base, err := os.MkdirTemp("", "ebpfjail-pin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "home")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	// Replaced, not rewritten in place: a running shell reads its file as
	// it goes.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var nobodyCred = &syscall.Credential{Uid: nobody, Gid: nobody}

// TestPrivilegedProcRestartRunsPinnedProgram: the jailed user owns the
// --proc program and rewrites it to allow everything; the restarted program
// is still the one named at start, which allows a.test only.
func TestPrivilegedProcRestartRunsPinnedProgram(t *testing.T) {
	dir := userDir(t)
	prog := filepath.Join(dir, "rule.sh")
	// Answers once, then exits: every request restarts it.
	writeScript(t, prog, `read l; case "$l" in *'"host":"a.test"'*) echo true ;; *) echo false ;; esac`)
	p, err := NewLineProcess(prog, ProcOptions{Credential: nobodyCred, Logger: testutil.DiscardLogger(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	writeScript(t, prog, `while read l; do echo true; done`)
	for i := range 2 {
		if v := p.Evaluate(ctx, &Request{Host: "a.test"}); !v.Allow {
			t.Fatalf("a.test, round %d: got %+v, want allow (the program named at start runs)", i, v)
		}
		if v := p.Evaluate(ctx, &Request{Host: "b.test"}); v.Allow {
			t.Fatalf("b.test, round %d: got allow (%+v), want deny: the rewritten program ran", i, v)
		}
	}
	if p.starts < 3 {
		t.Fatalf("program started %d times, want a restart per request", p.starts)
	}
}

// TestPrivilegedShellRunsPinnedScript: the same for --sh, which runs the
// script for every request.
func TestPrivilegedShellRunsPinnedScript(t *testing.T) {
	dir := userDir(t)
	script := filepath.Join(dir, "rule.sh")
	writeScript(t, script, `test "$HTTPJAIL_HOST" = a.test`)
	sh, err := NewShell(script, ShellOptions{Credential: nobodyCred, Logger: testutil.DiscardLogger(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	writeScript(t, script, `exit 0`)
	ctx := context.Background()
	if v := sh.Evaluate(ctx, &Request{Host: "a.test"}); !v.Allow {
		t.Fatalf("a.test: got %+v, want allow (the script named at start runs)", v)
	}
	if v := sh.Evaluate(ctx, &Request{Host: "b.test"}); v.Allow {
		t.Fatalf("b.test: got allow (%+v), want deny: the rewritten script ran", v)
	}
}

// TestPrivilegedRootOwnedProgramNotPinned: a program the user cannot change
// runs from its own path (an interpreter finds its files next to it).
func TestPrivilegedRootOwnedProgramNotPinned(t *testing.T) {
	userDir(t)
	p, err := pinProgram([]string{"sh", "-c", "true"}, nobodyCred)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if len(p.files) != 0 || p.path == "" || p.path[0] != '/' || filepath.Base(p.path) != "sh" {
		t.Fatalf("got path %q, %d pinned files, want /.../sh and none", p.path, len(p.files))
	}
}

func TestReplaceable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	base := t.TempDir()
	os.Chmod(base, 0o755)
	mk := func(rel string, mode os.FileMode, uid int, dir bool) string {
		p := filepath.Join(base, rel)
		if dir {
			os.Mkdir(p, mode)
		} else {
			os.WriteFile(p, nil, mode)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, 0)
		return p
	}
	mk("root", 0o755, 0, true)
	rootFile := mk("root/f", 0o755, 0, false)
	worldFile := mk("root/w", 0o777, 0, false)
	mk("user", 0o755, nobody, true)
	userDirRootFile := mk("user/f", 0o755, 0, false)
	mk("sticky", os.ModeSticky|0o777, 0, true) // os.Chmod ignores a raw 0o1000
	stickyRootFile := mk("sticky/f", 0o755, 0, false)
	stickyUserFile := mk("sticky/u", 0o755, nobody, false)
	link := filepath.Join(base, "user/link")
	os.Symlink(rootFile, link)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{rootFile, false},
		{worldFile, true},
		{userDirRootFile, true},
		{stickyRootFile, false},
		{stickyUserFile, true},
		{link, true},
	} {
		if got := replaceable(tc.path, nobody, []uint32{nobody}); got != tc.want {
			t.Errorf("replaceable(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
