package proxy

import (
	"net/netip"
	"testing"
)

func TestRequesterIPIsTheRoutesSourceOfTheSameFamily(t *testing.T) {
	for _, tc := range []struct{ dst, want string }{
		{"127.0.0.1:80", "127.0.0.1"},
		{"127.0.0.53:53", "127.0.0.1"},
		{"[::1]:443", "::1"},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1"},
	} {
		if got := requesterIP(netip.MustParseAddrPort(tc.dst)); got != tc.want {
			t.Errorf("requesterIP(%s) = %s, want %s", tc.dst, got, tc.want)
		}
	}
}
