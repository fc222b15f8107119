// Package rules decides, per request, whether the jail may make it: the
// Engine interface the proxy and the DNS shim call, and its
// implementations. Engines do no network I/O of their own.
//
// The engines are httpjail's, with its semantics:
//
//   - JS (--js, --js-file): a JavaScript rule run by goja; see JS.
//   - Shell (--sh): one process per request; see Shell.
//   - LineProcess (--proc): one long-lived process answering a line per
//     request; see LineProcess.
//   - DenyAll (no rule flag: httpjail denies everything) and AllowAll.
//
// Every engine sees the same request: url, method, scheme, host, port, path,
// requester_ip and proc {pid, ppid, uid, comm, exe}, in that order (the
// Request type; its JSON form is the --proc line). JS and --proc answers are
// read by ParseResult, httpjail's RuleResponse::from_string, so the same
// answer means the same Verdict whichever engine gives it.
//
// Verdict.Reason is for logs only. It is "rule" when the rule answered,
// "rule: <stdout>" when a --sh script allowed and printed something (for
// --test), "rule error: ..." when the rule failed (a JavaScript exception,
// a script that could not start), "rule timed out after 1s" or "Script
// execution timed out" at a time limit, "program evaluation failed: ..."
// when --proc failed twice, and "no rule" for DenyAll. Errors never go into
// DenyMessage, which reaches the client's 403 body.
//
// Where this package differs from httpjail, on purpose:
//
//   - The JavaScript engine reuses runtimes from a pool instead of creating a
//     V8 isolate per request: r is fresh each time, and the rule runs as a
//     block so its top-level declarations are too, but assigned globals may
//     persist within one runtime. An evaluation is interrupted after the
//     timeout (httpjail had none), regular expressions included (a match
//     that gives up denies, whatever the rule made of it), and a thrown
//     exception denies with the error in Reason rather than "JavaScript
//     execution failed" as the message. At most about one evaluation per
//     CPU runs at once; the wait for a turn does not count against the
//     timeout.
//   - r is a goja dynamic object, not a plain one (see jsrequest.go): it
//     reads like one but cannot be frozen.
//   - --proc splits its program string on spaces into argv, starts it with
//     the engine, and logs its stderr instead of inheriting it.
//   - --sh and --proc get the port and the process (EBPFJAIL_* variables,
//     the port and proc keys), and --sh kills the script's whole process
//     group at the time limit.
//   - max_tx_bytes 0 becomes a 1-byte limit, because 0 means "no limit" in
//     Verdict.
package rules
