// Package bench is the side-by-side benchmark (scripts/bench, `make bench`): a
// load client run directly against a test origin and inside ebpfjail,
// interleaved over several rounds, with medians and jailed/direct ratios
// printed as a table and written as JSON. TestSideBySide runs only when
// EBPFJAIL_BENCH is "full" (`make bench`, a few minutes) or "quick" (one
// short round, run by `make test` to prove every row can be measured). It
// never asserts a ratio: these machines are shared and noisy.
package bench
