package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/helptopics"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// Each usage error is one error line and one hint about its own flag;
// only a missing command is told where the command goes.
func TestUsageErrorsNameTheirFlagAndHintAboutIt(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		error, hint string
	}{
		{[]string{"--sh", "/missing", "--", "true"}, "--sh: no such program: /missing",
			"--sh SCRIPT: run SCRIPT per request (HTTPJAIL_* variables); exit 0 allows, its output is the deny message"},
		{[]string{"--proc", "/missing", "--test", "http://a.test/"}, "--proc: no such program: /missing",
			"--proc PROGRAM: one long-running PROGRAM: a JSON request per line in, a verdict per line out"},
		{[]string{"--js-file", "/missing", "--", "true"}, "--js-file: no such file: /missing",
			"--js-file FILE: read the JavaScript rule from FILE (once: the command cannot change it)"},
		{[]string{"--js", "true", "--js", "false", "--", "true"}, "--js is given twice: it takes one value",
			"--js CODE: JavaScript CODE deciding each request from r (r.host, r.method, r.proc.comm, ...)"},
		{[]string{"--js", "true", "--sh", "true", "--", "true"}, "--js and --sh both give a rule",
			"give at most one of --js, --js-file, --sh and --proc (none denies every request)"},
		{[]string{"--timeout", "1", "--timeout", "2", "--", "true"}, "--timeout is given twice: it takes one value",
			"--timeout SECONDS: stop the command after SECONDS and exit 124"},
		{[]string{"--no-mitm", "--", "true"}, "--no-mitm needs a HOSTGLOB before --",
			"--no-mitm HOSTGLOB: pass TLS to names matching HOSTGLOB through unopened (repeatable)"},
		{[]string{"--dns", "weird", "--", "true"}, `--dns takes fake or forward, got "weird"`,
			"--dns MODE: MODE fake: answer every lookup with a stand-in address, forward nothing; forward: ask --dns-upstream for names the rule allows (r.scheme 'dns')"},
		{[]string{"--bogus", "--", "true"}, "unknown flag: --bogus",
			"'ebpfjail --help' lists the options; 'ebpfjail help TOPIC' explains one"},
		{[]string{"--js", "true"}, "no command to run",
			"put the command after --, as in: ebpfjail -- curl https://example.com"},
		{[]string{"help", "nonsense"}, `no help topic "nonsense"`,
			"topics: " + strings.Join(helptopics.Names(), ", ")},
		{[]string{"ca", "show"}, "ca takes one of: export, path", "usage: ebpfjail ca export | ca path"},
		{[]string{"check", "--target", "2001:db8:eb::1"}, "check --target needs --attack", "usage: ebpfjail check; ebpfjail check --attack"},
	} {
		r := jail(t, runOpts{}, tc.args...)
		want := "ebpfjail: error: " + tc.error + "\nebpfjail: hint: " + tc.hint + "\n"
		if r.code != 2 || r.stderr != want {
			t.Errorf("%q: got exit %d stderr\n%s\nwant exit 2 stderr\n%s", tc.args, r.code, r.stderr, want)
		}
	}
}

// A rule that cannot start stops ebpfjail before the command runs.
func TestPrivilegedMissingShScriptStopsBeforeTheCommand(t *testing.T) {
	testutil.RequireRoot(t)
	marker := filepath.Join(sharedDir(t), "ran")
	r := jail(t, runOpts{}, "--sh", "/missing/allow.sh", "--user", "nobody", "--", "touch", marker)
	if r.code != 2 {
		t.Errorf("exit: got %d, want 2\n%s", r.code, r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although its --sh script does not exist")
	}
}

func TestHelpTopics(t *testing.T) {
	r := jail(t, runOpts{}, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "Help topics ('ebpfjail help TOPIC'):\n  audit ") {
		t.Errorf("help: got %s\nwant --help's text and the topics", r)
	}
	for topic, want := range map[string]string{
		"rules": "r.requester_ip", "r": "r.proc", "dns": "--dns forward", "tcp": "tcp://HOST:PORT",
		"logs": "--request-log FILE", "audit": "--audit", "exit": "124 ", "examples": "sudo ebpfjail",
	} {
		r := jail(t, runOpts{}, "help", topic)
		if r.code != 0 || !strings.Contains(r.stdout, want) || r.stderr != "" {
			t.Errorf("help %s: got %s\nwant exit 0 and %q on stdout", topic, r, want)
		}
	}
}

// --timeout says in one line why the exit status is 124.
func TestPrivilegedTimeoutSaysSo(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{}, "--timeout", "1", "--user", "nobody", "--", "sleep", "30")
	if r.code != 124 {
		t.Errorf("exit: got %d, want 124\n%s", r.code, r)
	}
	if want := "ebpfjail: timeout: stopped the command after 1 s\n"; r.stderr != want {
		t.Errorf("stderr: got %q, want %q", r.stderr, want)
	}
	// A command that exits 124 by itself before the timeout is not blamed on it.
	r = jail(t, runOpts{}, "--timeout", "30", "--user", "nobody", "--", "sh", "-c", "exit 124")
	if r.code != 124 || strings.Contains(r.stderr, "timeout") {
		t.Errorf("own 124: got %s\nwant exit 124 and no timeout line", r)
	}
}

// -v and -vv write ebpfjail's lines in one format: no slog text lines
// (time=... level=...) among the "ebpfjail:" ones.
func TestPrivilegedVerboseLinesHaveOneFormat(t *testing.T) {
	testutil.RequireRoot(t)
	for _, v := range []string{"-v", "-vv"} {
		r := jail(t, runOpts{}, v, "--user", "nobody", "--js", "true", "--", "true")
		if r.code != 0 {
			t.Fatalf("%s: %s", v, r)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if !strings.HasPrefix(line, "ebpfjail: ") || strings.Contains(line, "level=") || strings.Contains(line, "time=") {
				t.Errorf("%s: got line %q, want every line as \"ebpfjail: ...\" without time= or level=", v, line)
			}
		}
		contains(t, v+" command line", r.stderr, "ebpfjail: command started pid=")
	}
}

// check names why the BPF LSM is missing, not cilium's MEMLOCK guess.
func TestPrivilegedCheckDoesNotBlameMemlock(t *testing.T) {
	testutil.RequireRoot(t)
	r := jail(t, runOpts{}, "check")
	if strings.Contains(r.stderr+r.stdout, "MEMLOCK") {
		t.Errorf("check: got %s\nwant no MEMLOCK advice (the limit is lifted before loading)", r)
	}
	if strings.Contains(r.stderr, "BPF LSM") && !strings.Contains(r.stderr, "this kernel ") {
		t.Errorf("check: got %q, want the BPF LSM warning to say what this kernel lacks or refuses", r.stderr)
	}
}

// --no-jail-cleanup leaves the jail's cgroup, pins and state record (and
// says where); a later jail's start leaves them too; --cleanup removes
// them. Only this test's jail is looked at.
func TestPrivilegedNoJailCleanupKeepsTheJailUntilCleanup(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.SweepExclusive(t) // no other test run's jail start sweeps ours meanwhile
	t.Cleanup(func() { jail(t, runOpts{}, "--cleanup") })
	r := jail(t, runOpts{}, "--no-jail-cleanup", "--user", "nobody", "--js", "true", "--", "true")
	m := regexp.MustCompile(`(?m)^ebpfjail: warning: --no-jail-cleanup: kept jail (\S+): cgroup (\S+), BPF pins (\S+) \(its processes killed, its connections refused\); 'sudo ebpfjail --cleanup' removes it$`).FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil {
		t.Fatalf("got %s\nwant exit 0 and a line naming the kept jail's cgroup and pins", r)
	}
	id, cgroup, pins := m[1], m[2], m[3]
	record := filepath.Join("/run/ebpfjail/jails", id+".json")
	exists := func(when string, want bool) {
		t.Helper()
		for _, p := range []string{cgroup, pins, record} {
			if _, err := os.Stat(p); (err == nil) != want {
				t.Errorf("%s: %s exists: got %v, want %v", when, p, err == nil, want)
			}
		}
	}
	exists("after the run", true)
	if links, _ := filepath.Glob(filepath.Join(pins, "link*")); len(links) == 0 {
		t.Errorf("after the run: got no pinned links in %s, want the jail's programs", pins)
	}
	if r := jail(t, runOpts{}, "--user", "nobody", "--js", "true", "--", "true"); r.code != 0 {
		t.Fatalf("another jail: %s", r)
	}
	exists("after another jail's start (which sweeps dead jails)", true)
	r = jail(t, runOpts{}, "--cleanup")
	contains(t, "--cleanup", r.stdout, "removed jail "+id+" ")
	exists("after --cleanup", false)
}

// Loopback goes through the rule: a dev server the command starts in the
// same jail is reached only when the rule allows it (README's example).
func TestPrivilegedLoopbackDevServerNeedsTheRule(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "curl")
	dir := sharedDir(t)
	script := `cd "$1" && python3 -c "import http.server,sys; s=http.server.HTTPServer(('127.0.0.1',0),http.server.SimpleHTTPRequestHandler); open('port.tmp','w').write(str(s.server_port)); __import__('os').rename('port.tmp','port'); s.serve_forever()" 2>/dev/null &
i=0; while [ ! -e "$1/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
p=$(cat "$1/port")
curl -sS -o /dev/null -w "127.0.0.1 %{http_code}\n" http://127.0.0.1:$p/
curl -sS -o /dev/null -w "localhost %{http_code}\n" http://localhost:$p/
kill $!`
	for _, tc := range []struct{ rule, want string }{
		{"r.host === 'localhost' || r.host === '127.0.0.1'", "127.0.0.1 200\nlocalhost 200\n"},
		{"r.host === 'example.com'", "127.0.0.1 403\nlocalhost 403\n"},
	} {
		os.Remove(filepath.Join(dir, "port"))
		r := jail(t, runOpts{}, "--user", "nobody", "--js", tc.rule, "--", "sh", "-c", script, "sh", dir)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("--js %q: got %s\nwant stdout %q", tc.rule, r, tc.want)
		}
	}
}

// README's httpjail table has a row for each of httpjail's options and
// variables, and each option it says ebpfjail has too is one.
func TestReadmeMapsEveryHttpjailFlagAndVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## Coming from httpjail")
	if !ok {
		t.Fatal("README.md has no '## Coming from httpjail' section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	for _, name := range []string{"--js CODE", "--js-file FILE", "--sh SCRIPT", "--proc PROGRAM", "--request-log FILE",
		"--weak", "`-v`", "--timeout SECS", "--server", "--test [METHOD] URL", "--cleanup", "--no-jail-cleanup",
		"--docker-run", "`trust`", "--help", "--version", "RUST_LOG", "HTTPJAIL_HTTP_BIND", "HTTPJAIL_HTTPS_BIND",
		"HTTPJAIL_DANGER_DISABLE_CERT_VALIDATION", "HTTPJAIL_SKIP_KEYCHAIN_INSTALL", "SUDO_USER", "SUDO_UID", "SUDO_GID",
		"RES_OPTIONS", "NO_PROXY", "XDG_CONFIG_HOME", "HTTPJAIL_CA_CERT", "DENO_CERT"} {
		if !strings.Contains(table, name) {
			t.Errorf("README's httpjail table lacks %q", name)
		}
	}
	help := jail(t, runOpts{}, "--help").stdout
	for _, f := range []string{"--js ", "--js-file ", "--sh ", "--proc ", "--request-log ", "--weak ", "--timeout ", "--server ",
		"--test ", "--cleanup ", "--no-jail-cleanup ", "--listen ", "--listen-https "} {
		if !strings.Contains(help, f) {
			t.Errorf("--help lacks %q, which README's httpjail table names", f)
		}
	}
}
