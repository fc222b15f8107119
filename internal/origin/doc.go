// Package origin is what the kernel recorded about a jailed connection: the
// destination the process asked for and the process itself (pid, parent,
// uid, comm, the program it runs). internal/bpf produces an [Origin] from
// its maps; the proxy and the DNS shim consume it. It is a package of its
// own, with no dependencies, so that the consumers never link the eBPF
// loader (and its library) only to name a plain struct.
package origin
