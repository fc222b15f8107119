package supervisor

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Default ports of --server, as httpjail's: HTTP, and HTTPS (CONNECT or
// direct TLS).
const (
	HTTPPort  = "8080"
	HTTPSPort = "8443"
)

// BindAddr reads a listen address as httpjail reads HTTPJAIL_HTTP_BIND and
// HTTPJAIL_HTTPS_BIND: "ip:port" (port 0: any free one), ":port" or "port"
// (all interfaces), "ip" (defaultPort), or "" (127.0.0.1:defaultPort).
func BindAddr(v, defaultPort string) (string, error) {
	switch {
	case v == "":
		return net.JoinHostPort("127.0.0.1", defaultPort), nil
	case isPortOrZero(v):
		return "0.0.0.0:" + v, nil
	case strings.HasPrefix(v, ":") && isPortOrZero(v[1:]):
		return "0.0.0.0" + v, nil
	}
	if host, port, err := net.SplitHostPort(v); err == nil && net.ParseIP(host) != nil && isPortOrZero(port) {
		return v, nil
	}
	if ip := net.ParseIP(strings.Trim(v, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), defaultPort), nil
	}
	return "", fmt.Errorf("want ip:port, :port, port or ip, got %q", v)
}

func isPortOrZero(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}
