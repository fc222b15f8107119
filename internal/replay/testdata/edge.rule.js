// Written by: ebpfjail rule-from testdata/edge.jsonl
// It allows what that session was allowed to do, and denies anything else.
// Use it with --js-file.
//
// Requests: r.scheme, r.host, r.port, one of the methods, and the process's
// executable (exe "": the session did not record it, so any process).
const requests = [
  // curl (/usr/bin/curl), pid 10: 1 request(s) (GET ×1), first at 2026-01-02T03:04:05.1Z, line 2
  // The session also denied 3 request(s) of these methods here (another path, a
  // person's answer, a size limit): this entry allows them. Narrow it by r.path if need be.
  {exe: "/usr/bin/curl", scheme: "https", host: "ask.example.test", port: 443, methods: ["GET"]},
  // curl (/usr/bin/curl), pid 10: 1 request(s) (GET ×1), first at 2026-01-02T03:04:05.8Z, line 9
  {exe: "/usr/bin/curl", scheme: "https", host: "down.example.test", port: 443, methods: ["GET"]},
  // curl (/usr/bin/curl), pid 10: 1 request(s) (CONNECT ×1), first at 2026-01-02T03:04:06.2Z, line 13
  {exe: "/usr/bin/curl", scheme: "https", host: "pinned.example.test", port: 443, methods: ["CONNECT"]},
];

// Names a lookup may ask (r.scheme "dns"); the rule decides them with --dns forward.
const lookups = [
];

r.scheme === "dns"
  ? lookups.includes(r.host)
  : requests.some(a => a.scheme === r.scheme && a.host === r.host && a.port === r.port &&
      a.methods.includes(r.method) && (a.exe === "" || a.exe === r.proc.exe));
