package dns

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSystemUpstream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, conf, want string
		err              error
	}{
		{"v4", "nameserver 127.0.0.53\n", "127.0.0.53:53", nil},
		{"first wins", "search test\nnameserver 127.0.0.1\nnameserver 127.0.0.2\n", "127.0.0.1:53", nil},
		{"v6", "nameserver ::1\n", "[::1]:53", nil},
		{"zone", "nameserver fe80::1%lo\n", "[fe80::1%lo]:53", nil},
		{"comments and junk skipped", "# nameserver 127.0.0.9\n; nameserver 127.0.0.8\nnameserver bogus\n\tnameserver   127.0.0.3  \n", "127.0.0.3:53", nil},
		{"none", "search test\noptions ndots:1\n", "", ErrNoNameserver},
		{"empty", "", "", ErrNoNameserver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := SystemUpstream(path)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("SystemUpstream(%q): got %q, %v, want %q, %v", tc.conf, got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := SystemUpstream(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SystemUpstream(missing file): got %v, want ErrNotExist", err)
	}
}
