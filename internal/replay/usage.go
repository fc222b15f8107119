package replay

// ExitUnreadable is the status of replay and rule-from when the session
// file cannot be read or a line of it is not an event.
const ExitUnreadable = 3

// Usage is the help of replay and rule-from (ebpfjail replay --help).
const Usage = `Usage:
  ebpfjail replay EVENTS.jsonl RULE         what RULE would decide differently
  ebpfjail rule-from EVENTS.jsonl [-o FILE] a JavaScript rule allowing what the session did

EVENTS.jsonl is what --log-json wrote (- reads stdin). Neither needs root or
a jail: nothing is sent anywhere.

replay evaluates RULE (--js, --js-file, --sh or --proc, with --js-timeout,
as for a jail) on every recorded request and, unless the session ran with
--dns fake (where no rule decides lookups), every DNS lookup, rebuilt as the
rule saw them live (r.host, r.method, r.url, r.port, r.scheme, r.proc; a
lookup is QUERY dns://NAME), and prints one line per distinct change: its
direction, how many times, the request and the process; then a summary line.
It compares with the rule's recorded verdict, not always with what happened:
  --audit         what the rule answered for the record ("audit: the rule
                  allows", "audit: the rule would deny"); an audit without a
                  rule: allow, as happened. Its lookups record no answer of
                  the rule: they are not compared
  --ask           a request a person or the clock decided: the rule denied it
                  (only those are asked)
  max_tx_bytes    the rule allowed it (size limits are not replayed)
Requests refused before any rule was asked (a loop, a Host that is not the
TLS name, ...) are counted, not compared. r.requester_ip is 127.0.0.1; a
lookup's r.proc.exe and ppid come from a request (or else the exec) of the
same pid. --sh and --proc run as you.

rule-from writes (to FILE, or stdout) a rule for --js-file that allows the
requests the session was allowed to make, each tied to its scheme, host,
port, methods and executable, and the names it was allowed to look up (for
--dns forward), and denies anything else. A comment above each entry says
which process made it, how often, and when first. After a --dns fake session,
a name that no allowed request went to is listed in a comment, not allowed.

Examples:
  sudo ebpfjail --audit --log-json run.jsonl -- ./unknown-binary
  ebpfjail rule-from run.jsonl -o policy.js     review it, then:
  sudo ebpfjail --js-file policy.js -- ./unknown-binary
  ebpfjail replay run.jsonl --js-file policy-v2.js   in CI: exit 1 if any decision changes
  ebpfjail replay run.jsonl --js "r.host !== 'telemetry.example.com'"

Exit status: replay 0 if no decision changes, 1 if some do; both: 2 for a
usage error, 3 if EVENTS.jsonl cannot be read or a line is not an event
(the error names the line), 125 if the rule cannot start.
`
