// Package proxy is the transparent listener every TCP connection of a jail
// is steered to (or, with Config.Explicit, an explicit HTTP proxy). The
// files follow one connection through its stages:
//
//   - proxy.go: accept and hand off. Each accepted connection is looked up
//     in the kernel's record (Config.OrigDst: where it was meant to go,
//     which process made it; conn.go turns that into a conn), then handed
//     to the DNS shim (port 53) or to the dispatcher.
//   - classify.go: the dispatcher. It peeks at the first bytes and sends
//     the connection on as TLS, as HTTP/1.x, as plain TCP (--tcp), or
//     refuses it. A CONNECT tunnel's contents come back here.
//   - serverfirst.go: a client that says nothing at first, waiting for
//     its server to speak (SSH, SMTP): decided as TCP on host and port
//     under --tcp, whoever then speaks first saying what it is; refused
//     promptly otherwise.
//   - tls.go: TLS. Intercepted with a leaf for the server name (then HTTP/2
//     or HTTP/1.x inside), or, for --no-mitm names, spliced unopened.
//   - http.go: HTTP. Each request, on every protocol, is decided on its own:
//     target.go says where it goes and builds what the rule sees (with
//     rules.NewRequest), forward.go sends an allowed one upstream through
//     a ReverseProxy; connect.go answers CONNECT by opening a tunnel whose
//     contents go back to the dispatcher.
//   - lean.go, leanforward.go, leanparse.go, leanpool.go, leanwatch.go:
//     the lean HTTP/1.1 path every HTTP/1.x connection starts on (but with
//     Config.Secrets). A request head it reads without doubt is decided as
//     in http.go and forwarded on the connection's own goroutine through a
//     pool of upstream connections; the first it does not take (chunked or
//     large upload, Expect, Upgrade, HTTP/1.0, an odd head) is handed with
//     the rest of the connection to net/http's server and http.go.
//   - splice.go: connections decided once (--no-mitm TLS, --tcp) and then
//     copied both ways unopened; kernelsplice*.go hands one with no limit
//     to the kernel instead (Config.Splice), ebpfjail then only waiting
//     for its ends.
//   - upstream.go: dialing out. The Resolver picks the addresses; the one
//     forward in a dial's context carries the child's original address.
//
// Around them: events.go (the event of each decision), limits.go (requests
// in flight), timeouts.go (every wait bounded), txlimit.go (max_tx_bytes),
// local.go (a name never leads to this host itself) and secrets.go (with
// Config.Secrets: a secret's placeholder found where it does not belong is
// refused before the rule is asked; an allowed request to its host gets
// the real value, and that host's responses lose it again).
//
// Invariants:
//   - A connection the kernel has no record of did not come from the jail
//     (or its record is gone): it is reset, never dialed. Dialing the
//     listener's own address would loop.
//   - The listener binds loopback only (127.0.0.1 and [::1]), on ephemeral
//     ports that the BPF object is then loaded with.
//   - Nothing reaches an upstream before the rule allowed it: each request,
//     or a whole connection decided once.
//   - Every wait on a client or an upstream is bounded ([Timeouts]): a
//     peer that stalls is dropped and its goroutines end. Where data flows
//     the bound is on idleness, not on the total, so streams go on.
package proxy
