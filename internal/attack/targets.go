package attack

import (
	"errors"
	"fmt"
	"net/netip"
)

// Targets reads check --attack's --target list: one IPv4 and one IPv6
// address, of hosts that serve what the canaries would.
func Targets(list []string) (v4, v6 netip.Addr, err error) {
	for _, t := range list {
		a, perr := netip.ParseAddr(t)
		switch {
		case perr != nil:
			return v4, v6, fmt.Errorf("--target wants an IP address, got %q", t)
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && !a.Is4In6() && !v6.IsValid():
			v6 = a
		default:
			return v4, v6, fmt.Errorf("--target %s: give one IPv4 and one IPv6 address", t)
		}
	}
	if !v4.IsValid() || !v6.IsValid() {
		return v4, v6, errors.New("--target wants one IPv4 and one IPv6 address (give it twice)")
	}
	return v4, v6, nil
}
