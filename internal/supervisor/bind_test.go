package supervisor

import "testing"

// The forms httpjail's bind variables take, with its defaults.
func TestBindAddrReadsHttpjailsForms(t *testing.T) {
	for _, tc := range []struct{ in, port, want string }{
		{"", HTTPPort, "127.0.0.1:8080"},
		{"", HTTPSPort, "127.0.0.1:8443"},
		{"19882", HTTPPort, "0.0.0.0:19882"},
		{":19892", HTTPSPort, "0.0.0.0:19892"},
		{"0.0.0.0:19884", HTTPPort, "0.0.0.0:19884"},
		{"127.0.0.1", HTTPSPort, "127.0.0.1:8443"},
		{"0", HTTPPort, "0.0.0.0:0"},
		{"127.0.0.1:0", HTTPSPort, "127.0.0.1:0"},
		{"::1", HTTPPort, "[::1]:8080"},
		{"[::1]:9", HTTPPort, "[::1]:9"},
	} {
		if got, err := BindAddr(tc.in, tc.port); err != nil || got != tc.want {
			t.Errorf("BindAddr(%q, %s): got %q, %v; want %q", tc.in, tc.port, got, err, tc.want)
		}
	}
	for _, bad := range []string{"localhost", "127.0.0.1:http", "70000", "x:1"} {
		if got, err := BindAddr(bad, HTTPPort); err == nil {
			t.Errorf("BindAddr(%q): got %q, want an error", bad, got)
		}
	}
}
