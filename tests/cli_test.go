package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

func TestUsageErrorsExit2WithOneErrorLine(t *testing.T) {
	for _, args := range [][]string{{}, {"--timeout", "x", "--", "true"}, {"--bogus"}} {
		r := jail(t, runOpts{}, args...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, r.code, r)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if !strings.HasPrefix(lines[0], "ebpfjail: error: ") || len(lines) < 2 || !strings.HasPrefix(lines[1], "ebpfjail: hint: ") {
			t.Errorf("%q: stderr got %q, want an error line and a hint", args, r.stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := jail(t, runOpts{}, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
		t.Errorf("--help: %s", r)
	}
	r = jail(t, runOpts{}, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ebpfjail ") {
		t.Errorf("--version: %s", r)
	}
	// `make` builds with the commit stamped in.
	if os.Getenv("EBPFJAIL_BIN") != "" && !regexp.MustCompile(`\([0-9a-f]{12}\)`).MatchString(r.stdout) {
		t.Errorf("--version: got %q, want the commit in parentheses", r.stdout)
	}
}

func TestPrivilegedWithoutRootTheJailRefusesWithAHint(t *testing.T) {
	testutil.RequireRoot(t)
	// Run the binary itself as nobody: it must say so, not half-start.
	dir := sharedDir(t)
	b, _ := os.ReadFile(bin)
	nb := filepath.Join(dir, "ebpfjail")
	os.WriteFile(nb, b, 0o755)
	r := jail(t, runOpts{setup: func(c *exec.Cmd) {
		c.Path, c.Args[0] = nb, nb
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}}, "--", "true")
	if r.code != 125 {
		t.Errorf("exit: got %d, want 125\n%s", r.code, r)
	}
	contains(t, "error", r.stderr, "ebpfjail: error: jailing a command needs root")
	contains(t, "hint", r.stderr, "ebpfjail: hint: run it with sudo")
}

func TestPrivilegedRootChildNeedsUserRoot(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{env: []string{"SUDO_UID=", "SUDO_GID=", "SUDO_USER="}}, "--", "true")
	if r.code != 125 {
		t.Errorf("exit: got %d, want 125\n%s", r.code, r)
	}
	contains(t, "error", r.stderr, "ebpfjail: error: refusing to run the command as root")
	contains(t, "hint", r.stderr, "--user root")
	noJailsLeft(t)
}

func TestPrivilegedCheckReportsEveryProgram(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{}, "check")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"ok    running as root", "ok    cgroup2 at ", "ok    BPF object loads",
		"ok    attach connect4", "ok    attach connect6", "ok    attach sockops", "ok    attach getpeername6",
		"ok    attach sock_create", "ok    attach ingress (cgroup_skb", "ok    attach the identity hooks",
		"ok    Landlock ABI", "ok    Landlock signal scope", "ok    Landlock abstract unix socket scope",
		"ok    seccomp filter", "ok    unix socket paths: denied sockets masked",
		"this host can run ebpfjail"} {
		contains(t, "check", r.stdout, want)
	}
	left, _ := filepath.Glob(fmt.Sprintf("%s/ebpfjail-check-%d", testutil.Cgroup2Mount(t), r.pid))
	if len(left) > 0 {
		t.Errorf("check left %v", left)
	}
}

// The containment model is stated where a user looks, README and --help,
// one row per layer, each naming what refuses it: the layers that check
// reports (TestPrivilegedCheckReportsEveryProgram) and the jail enforces.
func TestReadmeAndHelpStateTheContainmentModel(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## Containment\n")
	if !ok {
		t.Fatal("README.md has no '## Containment' section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	help := jail(t, runOpts{}, "--help")
	_, helpTable, ok := strings.Cut(help.stdout, "\nContainment:")
	if !ok {
		t.Fatalf("--help has no 'Containment:' block\n%s", help)
	}
	helpTable, _, _ = strings.Cut(helpTable, "\n\n")
	for _, layer := range []string{"connect", "skb ingress", "seccomp", "Landlock", "Landlock scopes", "mount", "unix hooks", "connect()", "--allow-inbound", "--user root"} {
		if !strings.Contains(table, layer) {
			t.Errorf("README's containment table does not name %q", layer)
		}
		if !strings.Contains(helpTable, layer) {
			t.Errorf("--help's containment block does not name %q:\n%s", layer, helpTable)
		}
	}
}

// Every package says what it owns in a doc.go (house style).
func TestEveryPackageHasDocGo(t *testing.T) {
	for _, root := range []string{"../cmd", "../internal", "../pkg", "."} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || strings.Contains(p, "testdata") {
				return nil
			}
			gos, _ := filepath.Glob(filepath.Join(p, "*.go"))
			if len(gos) == 0 {
				return nil
			}
			if _, err := os.Stat(filepath.Join(p, "doc.go")); err != nil {
				t.Errorf("%s has Go files but no doc.go", p)
			}
			return nil
		})
	}
}
