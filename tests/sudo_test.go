package tests

import (
	"os"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// TestPrivilegedCommandNotFoundUnderSudoSaysSudoResetPATH runs ebpfjail as
// sudo would (SUDO_USER set, PATH reset to the secure_path): a command in a
// directory the user's own PATH has gets one error line saying so and the
// fix, exit 127.
func TestPrivilegedCommandNotFoundUnderSudoSaysSudoResetPATH(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		t.Skip("no go in /usr/local/go/bin")
	}
	const fix = `ebpfjail: hint: keep your PATH through sudo: sudo env PATH="$PATH" ebpfjail ..., or sudo --preserve-env=PATH,OPENAI_API_KEY ebpfjail ... (sudo -E keeps variables but not PATH)` + "\n"
	sudo := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SUDO_USER=nobody", "SUDO_UID=65534", "SUDO_GID=65534"}
	for _, c := range []struct {
		name, cmd string
		env       []string
		want      string
	}{
		{"in-users-path", "go", sudo,
			"ebpfjail: error: command not found: go (sudo reset PATH; go is in /usr/local/go/bin)\n" + fix},
		{"nowhere", "ebpfjail-no-such-tool", sudo,
			"ebpfjail: error: command not found: ebpfjail-no-such-tool (PATH is sudo's secure_path /usr/sbin:/usr/bin:/sbin:/bin, not yours)\n" + fix},
		{"without-sudo", "go", []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SUDO_USER=", "SUDO_UID=", "SUDO_GID="},
			"ebpfjail: error: command not found: go\nebpfjail: hint: check its name and the PATH\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := jail(t, runOpts{env: c.env}, "--user", "nobody", "--", c.cmd, "version")
			if r.code != 127 || r.stderr != c.want {
				t.Errorf("got exit %d, stderr:\n%s\nwant exit 127, stderr:\n%s", r.code, r.stderr, c.want)
			}
			if strings.Contains(r.stdout, "go version") {
				t.Errorf("the command ran: %q", r.stdout)
			}
		})
	}
	noJailsLeft(t)
}
