package rules

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheckSourceRefusesOnlyWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	os.WriteFile(plain, []byte("x"), 0o644)
	for _, tc := range []struct{ flag, value, want string }{
		{"--sh", "/missing", "--sh: no such program: /missing"},
		{"--sh", "no-such-program-anywhere", "--sh: no such program: no-such-program-anywhere"},
		{"--sh", "test -n \"$HTTPJAIL_HOST\"", ""}, // a command line for sh -c
		{"--sh", "true", ""},
		{"--proc", "/missing --flag", "--proc: no such program: /missing"},
		{"--proc", "cat -u", ""},
		{"--proc", plain, "--proc: " + plain + ": permission denied"},
		{"--js-file", "/missing.js", "--js-file: no such file: /missing.js"},
		{"--js-file", plain, ""},
		{"--js", "/missing", ""},
		{"--sh", "", ""},
	} {
		got := ""
		if err := CheckSource(tc.flag, tc.value); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckSource(%s, %q): got %q, want %q", tc.flag, tc.value, got, tc.want)
		}
	}
}
