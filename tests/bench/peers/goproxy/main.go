package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	caCert := flag.String("ca-cert", "", "CA certificate (PEM) to sign MITM certificates with")
	caKey := flag.String("ca-key", "", "its key (PEM)")
	resolve := flag.String("resolve", "", "NAME=IP: connections to NAME go to IP")
	flag.Parse()
	ca, err := tls.LoadX509KeyPair(*caCert, *caKey)
	if err != nil {
		log.Fatalf("goproxy: load CA: %v", err)
	}
	if ca.Leaf, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
		log.Fatalf("goproxy: parse CA: %v", err)
	}
	name, ip, _ := strings.Cut(*resolve, "=")
	d := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == name {
			addr = net.JoinHostPort(ip, port)
		}
		return d.DialContext(ctx, network, addr)
	}
	proxy := goproxy.NewProxyHttpServer()
	proxy.Logger = log.New(io.Discard, "", 0)
	proxy.CertStore = &certCache{m: map[string]*tls.Certificate{}}
	proxy.Tr = &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{}, // the system roots: SSL_CERT_FILE
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   false,
	}
	proxy.ConnectDial = func(network, addr string) (net.Conn, error) { return dial(context.Background(), network, addr) }
	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca)}
	proxy.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return mitm, host
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("goproxy: %v", err)
	}
	fmt.Println(ln.Addr())
	log.Fatal(http.Serve(ln, proxy))
}

// certCache keeps each MITM certificate made, by host name.
type certCache struct {
	mu sync.Mutex
	m  map[string]*tls.Certificate
}

func (c *certCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cert, ok := c.m[host]; ok {
		return cert, nil
	}
	cert, err := gen()
	if err == nil {
		c.m[host] = cert
	}
	return cert, err
}
