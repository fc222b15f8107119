package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTestFlagFormsAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--js", "r.host === 'a.test'", "--test", "https://a.test/x"}, 0, "ALLOW GET https://a.test/x\n"},
		{[]string{"--js", "r.method === 'POST'", "--test", "post", "https://a.test/"}, 0, "ALLOW POST https://a.test/\n"},
		{[]string{"--js", "r.method === 'POST'", "--test", "PUT https://a.test/"}, 1, "DENY PUT https://a.test/\n"},
		{[]string{"--js", "r.port === 8443 && r.path === '/p'", "--test=https://a.test:8443/p?q=1"}, 0, "ALLOW GET https://a.test:8443/p?q=1\n"},
		{[]string{"--js", "({allow: false, deny_message: 'not today'})", "--test", "http://a.test/"}, 1, "DENY GET http://a.test/\nnot today\n"},
		{[]string{"--test", "http://a.test/"}, 1, "DENY GET http://a.test/\n"},
		{[]string{"--sh", "test \"$HTTPJAIL_HOST\" = a.test && echo ok", "--test", "http://a.test/"}, 0, "ALLOW GET http://a.test/\nok\n"},
	} {
		r := jail(t, runOpts{}, tc.args...)
		if r.code != tc.code || r.stdout != tc.out {
			t.Errorf("%q: got exit %d %q, want %d %q\n%s", tc.args, r.code, r.stdout, tc.code, tc.out, r.stderr)
		}
	}
}

func TestInvalidRuleStopsEbpfjailBeforeTheCommand(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	r := jail(t, runOpts{}, "--js", "r.host ===\n  === 'x'", "--user", "nobody", "--", "touch", marker)
	if r.code != 125 {
		t.Errorf("exit: got %d, want 125\n%s", r.code, r)
	}
	contains(t, "error with line:column", r.stderr, "--js:2:")
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran despite the bad rule")
	}
	r = jail(t, runOpts{}, "--js", "true", "--sh", "true", "--", "true")
	if r.code != 2 {
		t.Errorf("two rules: exit %d, want 2\n%s", r.code, r)
	}
}

func TestPrivilegedRulesSeeTheProcessAndFailClosed(t *testing.T) {
	s := newSite(t)
	t.Run("proc-comm", func(t *testing.T) {
		rule := "r.proc.comm === 'curl' && r.proc.pid > 0 && r.proc.uid === 65534 && r.proc.exe.endsWith('/curl')"
		script := `curl -sS -o /dev/null -w "curl %{http_code}\n" http://allowed.test/
` + python(t) + ` -c "import urllib.request, urllib.error
try: print('python', urllib.request.urlopen('http://allowed.test/').status)
except urllib.error.HTTPError as e: print('python', e.code)"`
		r := s.run(t, rule, nil, "sh", "-c", script)
		contains(t, "curl", r.stdout, "curl 200")
		contains(t, "python", r.stdout, "python 403")
	})
	t.Run("deny-message", func(t *testing.T) {
		r := s.run(t, "({deny_message: 'ask the admin for ' + r.host})", nil, "curl", "-sS", "http://allowed.test/")
		if want := "Request blocked by ebpfjail\nask the admin for allowed.test"; r.stdout != want {
			t.Errorf("body: got %q, want %q", r.stdout, want)
		}
	})
	t.Run("exception-and-runaway-rule", func(t *testing.T) {
		// An exception denies; a rule that never returns is stopped at the
		// limit; ebpfjail keeps answering either way.
		rule := "if (r.path === '/throw') { throw new Error('boom') } else if (r.path === '/spin') { while (true) {} } else { true }"
		script := `for p in throw spin ok; do curl -sS -m 20 -o /dev/null -w "$p %{http_code}\n" http://allowed.test/$p; done`
		r := s.run(t, rule, []string{"--js-timeout", "300ms"}, "sh", "-c", script)
		for _, want := range []string{"throw 403", "spin 403", "ok 200"} {
			contains(t, "results", r.stdout, want)
		}
		contains(t, "exception logged", r.stderr, "boom")
	})
	t.Run("js-file-is-read-once", func(t *testing.T) {
		dir := sharedDir(t)
		policy := filepath.Join(dir, "policy.js")
		os.WriteFile(policy, []byte("r.path === '/first'"), 0o666)
		os.Chmod(policy, 0o666)
		// The jailed command rewrites its policy (the file is writable to it)
		// and tries again: the rule it started with still decides.
		script := `curl -sS -o /dev/null -w "before %{http_code}\n" http://allowed.test/second
echo "true" > ` + policy + `; sleep 0.3
curl -sS -o /dev/null -w "after %{http_code}\n" http://allowed.test/second`
		args := []string{"-v", "--user", "nobody", "--js-file", policy,
			"--resolve", "allowed.test:" + s.h.IPv4.String(), "--", "sh", "-c", script}
		r := jail(t, runOpts{}, args...)
		contains(t, "before", r.stdout, "before 403")
		contains(t, "after", r.stdout, "after 403")
		if b, _ := os.ReadFile(policy); strings.TrimSpace(string(b)) != "true" {
			t.Errorf("the command did not manage to rewrite the file (%q): the test proves nothing", b)
		}
	})
	noJailsLeft(t)
}

func TestPrivilegedHangingCrashingOrGarbledRuleProgramsNeverLetARequestThrough(t *testing.T) {
	s := newSite(t)
	dir := sharedDir(t)
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, flag, rule, want string
	}{
		// The controls: the same kind of program answering properly.
		{"sh-allows", "--sh", "true", "200"},
		{"proc-allows", "--proc", script("proc-allows", `while read l; do echo true; done`), "200"},
		// The shell timeout is 30 s, the --proc one 5 s (tried twice).
		{"sh-hangs", "--sh", "sleep 600", "403"},
		{"sh-crashes", "--sh", script("sh-crashes", `echo true; kill -SEGV $$`), "403"},
		{"sh-garbage", "--sh", script("sh-garbage", `printf '\000\377{"allow": true}\n'; exit 1`), "403"},
		{"proc-hangs", "--proc", script("proc-hangs", `sleep 600`), "403"},
		{"proc-crashes", "--proc", script("proc-crashes", `read l; kill -SEGV $$`), "403"},
		{"proc-exits", "--proc", script("proc-exits", `read l; exit 0`), "403"},
		{"proc-garbage", "--proc", script("proc-garbage", `while read l; do printf '\000\377{"allow": tru\n'; done`), "403"},
		{"proc-no-newline", "--proc", script("proc-no-newline", `while read l; do printf '{"allow": true'; done`), "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-v", "--user", "nobody", tc.flag, tc.rule,
				"--resolve", "allowed.test:" + s.h.IPv4.String(), "--",
				"curl", "-sS", "-m", "90", "-o", "/dev/null", "-w", "%{http_code}", "http://allowed.test/" + tc.name}
			r := jail(t, runOpts{timeout: 2 * time.Minute}, args...)
			if r.stdout != tc.want {
				t.Errorf("status: got %q, want %s\n%s", r.stdout, tc.want, r)
			}
		})
	}
	t.Cleanup(func() {
		for _, req := range s.h.Requests() {
			if !strings.HasSuffix(req, "-allows") {
				t.Errorf("the origin received a request no rule allowed: %q", req)
			}
		}
		noJailsLeft(t)
	})
}
