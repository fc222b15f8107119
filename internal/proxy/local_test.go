package proxy

import (
	"errors"
	"net/netip"
	"testing"
)

func TestCheckLocalRefusesNamesThatLeadToThisHost(t *testing.T) {
	r := &Resolver{
		Pins:       map[string][]netip.Addr{"pinned.test": {netip.MustParseAddr("127.0.0.1")}},
		LocalNames: []string{"*.dev.test"},
		OwnAddrs: func() ([]netip.Prefix, error) {
			return []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24"), netip.MustParsePrefix("2001:db8::7/64")}, nil
		},
	}
	for _, tc := range []struct {
		host, addr string
		refused    bool
	}{
		{"rebind.test", "127.0.0.1", true},
		{"rebind.test", "127.9.9.9", true},
		{"rebind.test", "::ffff:127.0.0.1", true},
		{"rebind.test", "::1", true},
		{"rebind.test", "0.0.0.0", true},
		{"rebind.test", "0.1.2.3", true},
		{"rebind.test", "::", true},
		{"rebind.test", "169.254.169.254", true},
		{"rebind.test", "fe80::1", true},
		{"rebind.test", "224.0.0.1", true},
		{"rebind.test", "ff02::1", true},
		{"rebind.test", "255.255.255.255", true},
		{"rebind.test", "192.0.2.7", true},
		{"rebind.test", "::ffff:192.0.2.7", true},
		{"rebind.test", "192.0.2.255", true},
		{"rebind.test", "2001:db8::7", true},
		{"Rebind.Test.", "127.0.0.1", true},
		{"rebind.test", "192.0.2.8", false},
		{"rebind.test", "198.51.100.2", false},
		{"127.0.0.1", "127.0.0.1", false},
		{"::1", "::1", false},
		{"localhost", "127.0.0.1", false},
		{"LOCALHOST.", "::1", false},
		{"pinned.test", "127.0.0.1", false},
		{"api.dev.test", "127.0.0.1", false},
		{"dev.test", "127.0.0.1", true},
	} {
		err := r.checkLocal(tc.host, netip.MustParseAddr(tc.addr))
		var le *localDestError
		if got := errors.As(err, &le); got != tc.refused {
			t.Errorf("checkLocal(%q, %s): got %v, want refused=%v", tc.host, tc.addr, err, tc.refused)
		}
	}
}

func TestCheckLocalFailsClosedWithoutTheHostsAddresses(t *testing.T) {
	r := &Resolver{OwnAddrs: func() ([]netip.Prefix, error) { return nil, errors.New("no netlink") }}
	if err := r.checkLocal("example.test", netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Errorf("checkLocal without the host's addresses: got nil, want a refusal")
	}
}
