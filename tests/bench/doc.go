// Package bench is the side-by-side benchmark (scripts/bench, `make bench`): a
// load client run directly against a test origin and inside ebpfjail,
// interleaved over several rounds, with medians and jailed/direct ratios
// printed as a table, each row with its target and whether it is met, and
// written as JSON. TestSideBySide runs only when EBPFJAIL_BENCH is "full"
// (`make bench`, a few minutes) or "quick" (one short round, run by `make
// test` to prove every row can be measured). It never asserts a ratio:
// these machines are shared and noisy.
//
// TestPeers (EBPFJAIL_BENCH=peers, `make bench-peers`, not in CI) runs the
// same load through squid (ssl-bump) and goproxy (peers/, a module of its
// own) as well, interleaved with direct and ebpfjail, and prints one table
// of ratios to direct.
//
// table.go holds what the harness computes (medians, targets, the tables,
// the parsing of loadclient's, farm-bench's and /proc's output); it is
// unit-tested without root.
package bench
