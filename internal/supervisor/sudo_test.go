package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSudoNotFoundSaysSudoResetPATH(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "mytool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := toolDirs
	toolDirs = []string{dir}
	defer func() { toolDirs = old }()
	secure := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"mytool", []string{"SUDO_USER=nobody", "PATH=/opt/x"}, "sudo reset PATH; mytool is in " + dir},
		{"other", []string{"SUDO_USER=nobody", secure}, "PATH is sudo's secure_path /usr/local/sbin:"},
		{"other", []string{"SUDO_USER=nobody", "PATH=/opt/x:/usr/bin"}, ""},
		{"mytool", []string{"SUDO_USER=nobody", "PATH=" + dir}, ""},
		{"mytool", []string{secure}, ""},
		{"./mytool", []string{"SUDO_USER=nobody", secure}, ""},
	} {
		got := SudoNotFound(c.name, c.env)
		if (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("SudoNotFound(%q, %q) = %q, want %q", c.name, c.env, got, c.want)
		}
	}
}
