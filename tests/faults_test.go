package tests

import (
	"strings"
	"testing"
)

func TestPrivilegedFullLogDiskWarnsOnceAndDecisionsStand(t *testing.T) {
	s := newSite(t)
	script := `for i in 1 2 3; do
  curl -sS -o /dev/null -w "allowed %{http_code}\n" http://allowed.test/a$i
  curl -sS -o /dev/null -w "denied %{http_code}\n" http://denied.test/d$i
  curl -sS -o /dev/null -w "allowed-tls %{http_code}\n" https://allowed.test/t$i
done`
	r := s.run(t, allowRule, []string{"--request-log", "/dev/full", "--log-json", "/dev/full"}, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"allowed 200", "denied 403", "allowed-tls 200"} {
		if got := strings.Count(r.stdout, want+"\n"); got != 3 {
			t.Errorf("%q: got %d of 3\n%s", want, got, r)
		}
	}
	s.sawNo(t, "denied.test")
	if got := len(s.h.Requests()); got != 6 {
		t.Errorf("origin requests: got %d, want the 6 allowed: %v", got, s.h.Requests())
	}
	for _, log := range []string{"request log", "JSON log"} {
		if got := strings.Count(r.stderr, "ebpfjail: warning: cannot write the "+log+" (/dev/full): "); got != 1 {
			t.Errorf("warnings about the %s while running: got %d, want exactly 1\n%s", log, got, r.stderr)
		}
		contains(t, "warning at exit", r.stderr, "ebpfjail: warning: the "+log+" is incomplete: ")
	}
	contains(t, "the reason", r.stderr, "no space left on device")
	noJailsLeft(t)
}
