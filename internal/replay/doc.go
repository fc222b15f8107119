// Package replay reads a session recorded by --log-json and does two things
// with it, without a jail and without root:
//
//   - Compare: evaluate a rule against every recorded request and DNS
//     lookup, rebuilt through rules.NewRequest so the rule sees what it
//     would have seen live, and report the decisions that change
//     (ebpfjail replay).
//   - Generate: write a JavaScript rule that allows exactly what the
//     session was allowed to do (ebpfjail rule-from).
//
// What "the recorded verdict" is, when the event's verdict is not the
// rule's (see Recorded):
//
//   - --audit allows everything but asks the rule for the record: the
//     reason says what the rule answered ("audit: the rule allows", "audit:
//     the rule would deny (...)"), and that answer is the recorded verdict.
//     An audit without a rule ("audit") recorded no rule: what happened,
//     allow, is compared. An audit's lookups do not record the rule's
//     answer: they are counted, not compared.
//   - --ask asks a person only about what the rule denied: a request a
//     person or the clock decided ("person: ...", "timeout: ...", "(not
//     asked: ...)") counts as the rule's deny.
//   - max_tx_bytes: the rule allowed the request with a size limit that the
//     request then exceeded; it counts as the rule's allow. Limits are not
//     replayed: the recorded request's size is not the rule's business
//     here.
//   - Requests refused before any rule was asked (a Host that is not the
//     TLS name, a loop, too many requests in flight, ...) and lookups
//     answered by --dns fake (the rule does not decide them) are counted,
//     not compared.
//
// What a replayed rule cannot see as it was: r.requester_ip is not
// recorded (it is 127.0.0.1 here, as for --test); a DNS event names only
// pid, uid and comm, so the lookup's exe and ppid are taken from a request
// event of the same pid (the same kernel record), else from its exec event,
// else left empty.
//
// Input is untrusted: fields come from the jailed processes. Reading
// stops at the first line that is not a version-1 event (ReadError says
// which); text written for people has control characters replaced.
package replay
