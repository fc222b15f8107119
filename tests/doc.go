// Package tests holds the end-to-end tests of the built ebpfjail binary:
// real clients (curl, python3, dig, a Go client with Proxy: nil) inside a
// real jail, talking to test hosts in network namespaces the tests create.
// They need root; without it they skip. `make test` passes the binary it
// built in EBPFJAIL_BIN; without it TestMain builds one.
//
// Another test run, or a user's ebpfjail, may share the machine: a test
// judges only the jails its own runs made (noJailsLeft), and what only one
// run may touch at a time (the jails of dead supervisors, fixed paths) is
// taken with testutil's machine-wide locks.
package tests
