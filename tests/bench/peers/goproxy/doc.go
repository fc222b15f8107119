// Command goproxy is the goproxy peer of `make bench-peers`: an explicit
// HTTP proxy on -listen that MITMs every CONNECT with the CA in -ca-cert
// and -ca-key, caches the certificates it makes (as ebpfjail and squid
// do), verifies upstream TLS against the system roots (SSL_CERT_FILE) and
// sends every connection for -resolve's name to its address.
//
//	goproxy -listen 127.0.0.1:PORT -ca-cert ca.pem -ca-key ca.key -resolve bench.test=198.51.100.2
package main
