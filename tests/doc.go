// Package tests holds the end-to-end tests of the built ebpfjail binary:
// real clients (curl, python3, dig, a Go client with Proxy: nil) inside a
// real jail, talking to test hosts in network namespaces the tests create.
// They need root; without it they skip. `make test` passes the binary it
// built in EBPFJAIL_BIN; without it TestMain builds one.
package tests
