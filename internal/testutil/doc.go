// Package testutil holds shared test helpers; never imported by non-test code.
//
// Privileged and end-to-end tests use it to get a root-only guard, the
// cgroup2 mount, and test hosts: network namespaces joined to the test's own
// namespace by a veth pair, addressed from 198.51.100.0/24 and
// 2001:db8:eb::/64 only, with HTTP and DNS servers inside them. Never
// 203.0.113.0/24: the package registries are reached through an address
// there, and a test route over it would cut them off. Tests never need
// outside addresses or the internet.
//
// Several test binaries may create hosts at once (go test runs packages in
// parallel, and two test runs may share a machine), so each host reserves
// an address slot with an flock'd file in /run/lock and frees it, with
// everything else it made, in tb.Cleanup; scripts/testhost reserves its
// slots the same way. Lock takes other machine-wide locks the same way: for
// a fixed path a test stands something in at, and for the jails of dead
// supervisors (SweepShared, SweepExclusive).
//
// In-process tests get the helpers they would otherwise each write: a
// discard logger, a wait for goroutines to come back to a baseline, and a
// connected pair of loopback TCP connections.
//
// The test hosts need Linux (network namespaces); the rest builds anywhere,
// for the tests of the packages that do.
package testutil
