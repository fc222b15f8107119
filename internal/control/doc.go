// Package control is a running jail's control channel: the unix socket
// through which `ebpfjail watch` follows the jail's events and `ebpfjail
// ps` asks for its status, from another terminal.
//
// The supervisor makes one socket per jail, <state dir>/<id>.sock, before
// the command starts, so the socket is on the jail's unix deny list and
// masked in its mount namespace like any other denied socket. Who may use
// it:
//   - the kernel: the state directory and the socket are root's, mode 0700
//     and 0600, so a jailed non-root user can neither find nor open it,
//     however the path is spelled;
//   - the server: it reads the peer's credentials (SO_PEERCRED) and
//     refuses any peer that is not uid 0 or that runs in a jail's cgroup
//     (a jailed root included), counting the refusals in the status.
//
// The protocol is JSON lines. A client sends one [Request]; the server
// answers with [Message]s: a status, then (to a subscriber) every event as
// it happens and, when the jail ends, an end message. Each line carries
// the protocol version, so later operations (holding a request for a
// person to answer) can be added without breaking older watchers.
//
// With --ask, Ask wraps the rule: a request it denies is held (at most
// MaxPending at once, each until its timeout), shown to the subscribers
// as a Pending message, and decided by an answer operation (`ebpfjail
// answer`, or a key in an interactive watch); the verdict's reason says
// who decided. An answer can only come through the socket, so the jail
// cannot answer for itself.
//
// A watcher never slows the jail: the Hub hands each subscriber's events
// to a bounded buffer and, when it is full, drops them and counts; the
// subscriber is told how many it missed before its next event.
package control
