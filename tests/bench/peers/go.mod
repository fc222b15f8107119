// A module of its own, so that the peer proxies the benchmark builds
// (make bench-peers) never reach the main module's go.mod.
module github.com/ebpfjail/ebpfjail/tests/bench/peers

go 1.24.0

require github.com/elazarl/goproxy v1.9.4

require (
	golang.org/x/net v0.50.0 // indirect
	golang.org/x/text v0.34.0 // indirect
)
