// Package dns is the jail's DNS shim. The kernel steers every UDP datagram a
// jailed process sends to port 53 to the shim's UDP sockets (127.0.0.1 and
// [::1], ephemeral ports, see [Shim.Ports]); DNS over TCP lands on the
// transparent TCP listener, which hands the accepted connection over with
// [Shim.ServeConn] together with the process it already identified.
//
// The shim owns its two UDP sockets, the TCP connections handed to it and
// every exchange with the upstream resolver. For each query it finds the
// process that asked (for UDP, through the client socket's cookie, which
// sock_diag reveals, and the kernel's record for that cookie), decides the
// answer and logs the query once.
//
// Invariants:
//   - Every query that parses gets exactly one answer: the upstream's, or
//     SERVFAIL when the upstream fails or times out. A query is never dropped
//     silently, so a client never waits out its own timeout because of us.
//   - Malformed input never panics and never stops the shim: a message with a
//     readable header is answered FORMERR (NOTIMP for unsupported opcodes),
//     anything shorter or a stray response is ignored (answering those would
//     turn the shim into an amplifier).
//   - A query is forwarded over the transport it came with; a truncated UDP
//     answer is fetched again over TCP and then cut to the client's buffer.
//   - Forwarded queries carry a fresh ID, so the jailed client cannot choose
//     the ID seen by the upstream, and the client gets its own ID back.
//   - Process attribution is best effort: when the process cannot be found
//     the query is answered and logged without one.
//   - [Shim.Close] stops the sockets, cancels upstream exchanges, closes the
//     TCP connections and returns only when no goroutine of the shim is left.
//
// The upstream exchanges come from ebpfjail itself, which runs outside the
// jail's cgroup, so they are not steered back to the shim.
//
// [Shim.answer] is the one place where a reply is decided: in fake mode
// (Config.Fake) from the synthetic table, without asking anyone; in forward
// mode by the rule, if there is one (a denied name gets NXDOMAIN), then by
// the upstream resolver. Before either, a name that carries a secret's
// placeholder (Config.Secrets) is refused, in both modes (secrets.go).
package dns
