// Written by: ebpfjail rule-from testdata/forward.jsonl
// It allows what that session was allowed to do, and denies anything else.
// Use it with --js-file.
//
// Requests: r.scheme, r.host, r.port, one of the methods, and the process's
// executable (exe "": the session did not record it, so any process).
const requests = [
  // curl (/usr/bin/curl), pid 7506: 1 request(s) (GET ×1), first at 2026-12-07T05:17:05.034Z, line 3
  {exe: "/usr/bin/curl", scheme: "https", host: "a.replay.test", port: 443, methods: ["GET"]},
  // curl (/usr/bin/curl), pid 7528: 1 request(s) (GET ×1), first at 2026-12-07T05:17:05.084Z, line 6
  {exe: "/usr/bin/curl", scheme: "https", host: "b.replay.test", port: 443, methods: ["GET"]},
];

// Names a lookup may ask (r.scheme "dns"); the rule decides them with --dns forward.
const lookups = [
  // curl: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:05.027Z, line 1
  "a.replay.test",
  // curl: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:05.078Z, line 4
  "b.replay.test",
];

r.scheme === "dns"
  ? lookups.includes(r.host)
  : requests.some(a => a.scheme === r.scheme && a.host === r.host && a.port === r.port &&
      a.methods.includes(r.method) && (a.exe === "" || a.exe === r.proc.exe));
