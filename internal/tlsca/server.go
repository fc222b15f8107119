package tlsca

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"slices"
)

// ErrNoServerName is returned to crypto/tls when a client sent no SNI and
// neither the fallback nor the connection gave a name to mint a leaf for.
var ErrNoServerName = errors.New("tlsca: no server name for the client hello")

// ServerConfig returns a configuration for terminating a jailed client's
// TLS with leaves of this CA, offering nextProtos for ALPN.
//
// The leaf is for the ClientHello's SNI. Without SNI (a client that dialled
// an IP literal) it is for fallbackName(hello) if fallbackName is non-nil and
// returns a name, else for the local IP of the connection. In ebpfjail the
// local address is the proxy's loopback listener, not what the client
// dialled, so the proxy passes a fallbackName that returns the connection's
// original destination IP.
func (ca *CA) ServerConfig(nextProtos []string, fallbackName func(*tls.ClientHelloInfo) string) *tls.Config {
	return &tls.Config{
		NextProtos: slices.Clone(nextProtos),
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := serverName(hello, fallbackName)
			if name == "" {
				return nil, ErrNoServerName
			}
			return ca.Leaf(name)
		},
	}
}

func serverName(hello *tls.ClientHelloInfo, fallbackName func(*tls.ClientHelloInfo) string) string {
	if hello.ServerName != "" {
		return hello.ServerName
	}
	if fallbackName != nil {
		if name := fallbackName(hello); name != "" {
			return name
		}
	}
	if hello.Conn == nil || hello.Conn.LocalAddr() == nil {
		return ""
	}
	// Parse the string form rather than asserting *net.TCPAddr, so any
	// net.Conn with an ip:port local address works (and a net.Pipe, whose
	// address is "pipe", yields nothing).
	ap, err := netip.ParseAddrPort(hello.Conn.LocalAddr().String())
	if err != nil {
		return ""
	}
	return ap.Addr().String()
}
