package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// handshake runs a client and a server handshake over conns and returns the
// client's state and both errors.
func handshake(t *testing.T, clientConn, serverConn net.Conn, client, server *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	_ = clientConn.SetDeadline(deadline)
	_ = serverConn.SetDeadline(deadline)
	tc := tls.Client(clientConn, client)
	ts := tls.Server(serverConn, server)
	var serverErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		serverErr = ts.Handshake()
		if serverErr != nil {
			// Unblock the client, which may be waiting for a flight
			// that will not come.
			serverConn.Close()
		}
	})
	clientErr := tc.Handshake()
	if clientErr != nil {
		clientConn.Close()
	}
	wg.Wait()
	state := tc.ConnectionState()
	// Close the transports, not the TLS conns: a close_notify on a
	// net.Pipe blocks until the peer reads it, which nobody does.
	clientConn.Close()
	serverConn.Close()
	return state, clientErr, serverErr
}

func clientConfig(ca *CA, serverName string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return &tls.Config{
		RootCAs:    pool,
		ServerName: serverName,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

func TestServerConfigSNI(t *testing.T) {
	ca, _ := newTestCA(t)
	var fallbackCalled bool
	cfg := ca.ServerConfig([]string{"h2", "http/1.1"}, func(*tls.ClientHelloInfo) string {
		fallbackCalled = true
		return "203.0.113.1"
	})
	c, s := net.Pipe()
	state, clientErr, serverErr := handshake(t, c, s, clientConfig(ca, "api.example.test"), cfg)
	if clientErr != nil || serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", clientErr, serverErr)
	}
	if got := state.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "api.example.test" {
		t.Errorf("leaf DNS names %v, want [api.example.test]", got)
	}
	if state.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN %q, want h2", state.NegotiatedProtocol)
	}
	if fallbackCalled {
		t.Error("fallback called although the client sent SNI")
	}
}

func TestServerConfigALPN(t *testing.T) {
	ca, _ := newTestCA(t)
	client := clientConfig(ca, "example.test")
	client.NextProtos = []string{"http/1.1"}
	c, s := net.Pipe()
	state, clientErr, serverErr := handshake(t, c, s, client, ca.ServerConfig([]string{"h2", "http/1.1"}, nil))
	if clientErr != nil || serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", clientErr, serverErr)
	}
	if state.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q, want http/1.1 (the only one the client offered)", state.NegotiatedProtocol)
	}
}

func TestServerConfigFallback(t *testing.T) {
	ca, _ := newTestCA(t)
	for _, ip := range []string{"203.0.113.9", "2001:db8:eb::9"} {
		t.Run(ip, func(t *testing.T) {
			var sawSNI []string
			cfg := ca.ServerConfig([]string{"http/1.1"}, func(hello *tls.ClientHelloInfo) string {
				sawSNI = append(sawSNI, hello.ServerName)
				return ip // the original destination, as the proxy knows it
			})
			// A client dialling an IP literal sends no SNI (RFC 6066) but
			// verifies the certificate against the IP.
			c, s := net.Pipe()
			state, clientErr, serverErr := handshake(t, c, s, clientConfig(ca, ip), cfg)
			if clientErr != nil || serverErr != nil {
				t.Fatalf("handshake: client %v, server %v", clientErr, serverErr)
			}
			if len(sawSNI) != 1 || sawSNI[0] != "" {
				t.Errorf("fallback saw SNI %q, want one call without SNI", sawSNI)
			}
			leaf := state.PeerCertificates[0]
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP(ip)) {
				t.Errorf("leaf IP SANs %v, want [%s]", leaf.IPAddresses, ip)
			}
		})
	}
}

func TestServerConfigLocalAddr(t *testing.T) {
	ca, _ := newTestCA(t)
	c, s := testutil.TCPPair(t)
	// No SNI and a fallback with nothing to say: the leaf is for the
	// connection's local IP.
	cfg := ca.ServerConfig(nil, func(*tls.ClientHelloInfo) string { return "" })
	_, clientErr, serverErr := handshake(t, c, s, clientConfig(ca, "127.0.0.1"), cfg)
	if clientErr != nil || serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", clientErr, serverErr)
	}
}

func TestServerConfigNoName(t *testing.T) {
	ca, _ := newTestCA(t)
	c, s := net.Pipe() // "pipe" is no IP address
	_, clientErr, serverErr := handshake(t, c, s, clientConfig(ca, "203.0.113.9"), ca.ServerConfig(nil, nil))
	if !errors.Is(serverErr, ErrNoServerName) {
		t.Errorf("server error %v, want ErrNoServerName", serverErr)
	}
	if clientErr == nil {
		t.Error("client handshake succeeded without a certificate")
	}
}

func TestServerConfigUntrustedClient(t *testing.T) {
	// A client that does not trust the CA (one that ignores the bundle)
	// must fail the handshake: the proxy logs that, it never hides it.
	ca, _ := newTestCA(t)
	other, _ := newTestCA(t)
	c, s := testutil.TCPPair(t)
	_, clientErr, _ := handshake(t, c, s, clientConfig(other, "example.test"), ca.ServerConfig(nil, nil))
	var unknown x509.UnknownAuthorityError
	if !errors.As(clientErr, &unknown) {
		t.Errorf("client error %v, want x509.UnknownAuthorityError", clientErr)
	}
}

func TestServerConfigClonesNextProtos(t *testing.T) {
	ca, _ := newTestCA(t)
	protos := []string{"h2", "http/1.1"}
	cfg := ca.ServerConfig(protos, nil)
	protos[0] = "changed"
	if cfg.NextProtos[0] != "h2" {
		t.Errorf("NextProtos shares the caller's slice: %v", cfg.NextProtos)
	}
}
