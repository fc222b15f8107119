// Package peers holds the peer proxies `make bench-peers` measures
// ebpfjail against, in a module of its own so that their dependencies never
// reach the main module's go.mod. goproxy/ is a MITM proxy built on
// github.com/elazarl/goproxy; squid comes from Debian.
package peers
