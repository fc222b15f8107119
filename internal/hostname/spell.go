package hostname

import (
	"net/netip"
	"strconv"
	"strings"
)

// Fold is the one spelling of a DNS name: lower case, without the trailing
// dot of a fully qualified name (DNS is case-insensitive, and
// "example.com." is "example.com").
func Fold(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// Normalize is Fold for a host as a client writes it (a Host header, a URL,
// an SNI): an IPv6 literal's brackets are dropped too, so the result is a
// bare name or address.
func Normalize(host string) string {
	return strings.TrimSuffix(strings.TrimPrefix(Fold(host), "["), "]")
}

// Bracket writes host as it goes before a port or into a URL: an IPv6
// address in brackets, anything else as it is (a name, an IPv4 address, a
// host already in brackets, and a DNS name that holds a colon, which is
// no address).
func Bracket(host string) string {
	if strings.IndexByte(host, ':') < 0 {
		return host // no parse on the common path
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "[" + host + "]"
	}
	return host
}

// JoinPort writes host:port, an IPv6 host in brackets.
func JoinPort(host string, port int) string {
	return Bracket(host) + ":" + strconv.Itoa(port)
}
