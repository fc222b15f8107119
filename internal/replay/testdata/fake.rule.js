// Written by: ebpfjail rule-from testdata/fake.jsonl
// It allows what that session was allowed to do, and denies anything else.
// Use it with --js-file.
//
// Requests: r.scheme, r.host, r.port, one of the methods, and the process's
// executable (exe "": the session did not record it, so any process).
const requests = [
  // curl (/usr/bin/curl), pid 8989: 1 request(s) (GET ×1), first at 2026-12-07T05:17:19.372Z, line 3
  {exe: "/usr/bin/curl", scheme: "https", host: "a.replay.test", port: 443, methods: ["GET"]},
  // curl (/usr/bin/curl), pid 9004: 1 request(s) (GET ×1), first at 2026-12-07T05:17:19.444Z, line 13
  {exe: "/usr/bin/curl", scheme: "https", host: "c2vjcmv0.exfil.test", port: 443, methods: ["GET"]},
];

// Names a lookup may ask (r.scheme "dns"); the rule decides them with --dns forward.
const lookups = [
  // curl: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:19.357Z, line 1
  "a.replay.test",
  // curl: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:19.437Z, line 7
  "c2vjcmv0.exfil.test",
];

// Looked up under --dns fake (answered without a rule), but no allowed request
// went to them, so not allowed: --dns forward would refuse them. Move a name
// into lookups to allow it.
//   "b.replay.test", // curl: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:19.418Z, line 4
//   "lookup.replay.test", // getent: 2 lookup(s) (A AAAA), first at 2026-12-07T05:17:19.454Z, line 14

r.scheme === "dns"
  ? lookups.includes(r.host)
  : requests.some(a => a.scheme === r.scheme && a.host === r.host && a.port === r.port &&
      a.methods.includes(r.method) && (a.exe === "" || a.exe === r.proc.exe));
