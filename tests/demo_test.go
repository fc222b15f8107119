package tests

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrivilegedDemo is `make demo`: the whole product in one run, offline.
// A test origin in a network namespace serves allowed.test and denied.test;
// curl, node and python3 fetch both, first under a rule (one allowed, one
// 403), then under --audit (a table of who talked to whom). It prints what
// a user would see and checks it.
func TestPrivilegedDemo(t *testing.T) {
	s := newSite(t)
	clients := fmt.Sprintf(`for host in allowed.test denied.test; do
  curl -s -o /dev/null -w "curl    https://$host/ -> %%{http_code}\n" https://$host/
  node -e 'fetch(process.argv[1]).then(r => console.log("node    " + process.argv[1] + " -> " + r.status)).catch(e => console.log("node error", e.cause || e))' https://$host/ 2>/dev/null || echo "node    (not installed)"
  %s -c 'import sys, urllib.request, urllib.error
try: print("python3 %%s -> %%d" %% (sys.argv[1], urllib.request.urlopen(sys.argv[1]).status))
except urllib.error.HTTPError as e: print("python3 %%s -> %%d" %% (sys.argv[1], e.code))' https://$host/
done`, python(t))

	t.Log("$ sudo ebpfjail -v --js \"r.host === 'allowed.test'\" -- sh -c '<curl, node and python3 fetch both hosts>'")
	r := s.run(t, allowRule, nil, "sh", "-c", clients)
	t.Logf("command output:\n%s\nebpfjail's log:\n%s", r.stdout, r.stderr)
	for _, want := range []string{"curl    https://allowed.test/ -> 200", "curl    https://denied.test/ -> 403",
		"python3 https://allowed.test/ -> 200", "python3 https://denied.test/ -> 403"} {
		contains(t, "demo", r.stdout, want)
	}
	if !strings.Contains(r.stdout, "(not installed)") {
		contains(t, "demo", r.stdout, "node    https://allowed.test/ -> 200")
		contains(t, "demo", r.stdout, "node    https://denied.test/ -> 403")
	}
	contains(t, "denied requests are shown", r.stderr, "denied GET https://denied.test/")

	t.Log("$ sudo ebpfjail --audit -- sh -c '<the same>'")
	args := []string{"--audit", "--user", "nobody",
		"--resolve", "allowed.test:" + s.h.IPv4.String(), "--resolve", "denied.test:" + s.h.IPv4.String(), "--", "sh", "-c", clients}
	r = jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, args...)
	t.Logf("command output:\n%s\nebpfjail's audit:\n%s", r.stdout, r.stderr)
	contains(t, "audit lets everything through", r.stdout, "curl    https://denied.test/ -> 200")
	for _, want := range []string{"ebpfjail audit:", "curl", "python3", "allowed.test:443", "denied.test:443"} {
		contains(t, "audit table", r.stderr, want)
	}
	noJailsLeft(t)
}
