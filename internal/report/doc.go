// Package report turns the jail's events (pkg/event) into what the user
// reads: the --request-log file, the --log-json stream, the human log on
// stderr, the --audit summary (a process tree, [Audit]), and the HTML page
// of a recorded session (`ebpfjail report`: [ReadSession], [WriteHTML],
// with its template, style and script under page/).
//
// Every consumer is a [Sink]: it has one method, Emit, that never fails and
// never blocks on anything but its writer, so the proxy and the DNS shim can
// call it from any goroutine. [Fanout] hands one event to several sinks.
//
// Invariants:
//   - Safe for concurrent use: each sink formats outside its lock and writes
//     under it, one Write call per line, so lines from concurrent Emits
//     never interleave (and, on a file opened O_APPEND, neither do lines
//     from other processes appending to it).
//   - Unbuffered: a line is written when its event is emitted, so a log
//     read while the command runs (tail -f) is current, and nothing is lost
//     when ebpfjail is killed.
//   - Fail-safe formats: fields come from the jailed processes (a comm, a
//     URL, a DNS name) and are untrusted. The request log percent-escapes
//     whitespace and control bytes so a URL cannot forge a line; the human
//     log and the audit table replace control characters so a comm cannot
//     send escape sequences to the user's terminal. JSON escapes them by
//     itself. The HTML page is made by html/template, which escapes each
//     string for where it goes, and its Content-Security-Policy lets no
//     script run but its own and nothing be fetched.
//   - A write error is kept (Err) rather than returned, because a full disk
//     must not stop the jail from deciding requests; ebpfjail reports it at
//     exit.
//   - A nil *RequestLog, *JSON, *Human or *Audit ignores events, so a sink
//     that a flag did not ask for can be passed to Fanout as is.
//
// The line formats:
//
//	request log  2026-01-02T03:04:05.678Z + GET https://host/path
//	human        ebpfjail: denied GET https://x.test/ (curl pid 123): rule
//	JSON         {"v":1,"type":"request","time":"2026-01-02T03:04:05.678Z",...}
//
// How much the human log says depends on -v: by default only what went
// wrong (denied requests and DNS names, blocked connections, TLS handshakes
// the client rejected, upstream failures); -v adds every request, DNS
// answer and connection; -vv adds exec and summary events and byte counts.
//
// On a terminal the command shares, nothing may draw on its screen while it
// runs: a [Tally] takes the human log's place and counts what it would have
// told, for one line at exit, and a [Gate] holds ebpfjail's other messages
// (warnings, the log) until the command has exited.
package report
