// Package proxy is the transparent listener every TCP connection of a jail
// is steered to. For each accepted connection it asks the kernel (through
// Config.OrigDst) where the connection was meant to go and which process
// made it, then hands DNS-over-TCP to the shim and forwards the rest.
//
// Invariants:
//   - A connection the kernel has no record of did not come from the jail
//     (or its record is gone): it is reset, never dialed. Dialing the
//     listener's own address would loop.
//   - The listener binds loopback only (127.0.0.1 and [::1]), on ephemeral
//     ports that the BPF object is then loaded with.
//   - Every wait on a client or an upstream is bounded ([Timeouts]): a
//     peer that stalls is dropped and its goroutines end. Where data flows
//     the bound is on idleness, not on the total, so streams go on.
//
// This step forwards raw bytes (splice(2) where both ends are TCP); the
// per-request HTTP(S) decision is layered on top of the same pipeline.
package proxy
