package rules

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// The parity tests port httpjail's json_parity idea: the same answer, given
// through --js, --sh and --proc, is the same Verdict, and each engine sees
// the same request.

// replyScript answers every request line with $RESP; plain sh, so it runs
// where python3 does not.
const replyScript = `#!/bin/sh
while IFS= read -r line; do printf '%s\n' "$RESP"; done
`

// fieldScript answers with one field of the request (argv[2], dotted) as
// the deny message, or with the whole request (argv[1] "echo").
const fieldScript = `import json, sys
mode = sys.argv[1]
for line in sys.stdin:
    req = json.loads(line)
    if mode == "field":
        v = req
        for k in sys.argv[2].split("."):
            v = v[k]
        out = {"deny_message": str(v)}
    else:
        out = {"deny_message": json.dumps(req)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
`

func scriptFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func needPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	return py
}

func needSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh not found")
	}
}

func newTestProc(t *testing.T, program string, env ...string) *LineProcess {
	t.Helper()
	p, err := NewLineProcess(program, ProcOptions{Timeout: testTimeout, Logger: testutil.DiscardLogger(), Env: append(os.Environ(), env...)})
	if err != nil {
		t.Fatalf("NewLineProcess(%q): %v", program, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newTestShell(script string) Engine {
	e, err := NewShell(script, ShellOptions{Timeout: testTimeout, Logger: testutil.DiscardLogger()})
	if err != nil {
		panic(err)
	}
	return e
}

func TestParityResults(t *testing.T) {
	needSh(t)
	reply := scriptFile(t, "reply.sh", replyScript)
	r := typicalRequest()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		js    string   // the rule's answer as a JavaScript value
		line  string   // the same answer as a --proc line
		sh    string   // the same answer from --sh ("" if it cannot give it)
		want  Verdict  // from all of them
		line2 *Verdict // from --proc, where httpjail too differs
	}{
		{"true", "true", "true", "exit 0", allow(), nil},
		{"false", "false", "false", "exit 1", deny(""), nil},
		{"allow true", "({allow: true})", `{"allow": true}`, "exit 0", allow(), nil},
		{"allow false", "({allow: false})", `{"allow": false}`, "exit 1", deny(""), nil},
		{"allow false with message", "({allow: false, deny_message: 'x'})", `{"allow": false, "deny_message": "x"}`, "echo x; exit 1", deny("x"), nil},
		{"message only", "({deny_message: 'x'})", `{"deny_message": "x"}`, "echo x; exit 1", deny("x"), nil},
		{"max_tx_bytes", "({allow: {max_tx_bytes: 1024}})", `{"allow": {"max_tx_bytes": 1024}}`, "", allowLimit(1024), nil},
		{"empty object", "({})", `{}`, "exit 0", allow(), nil},
		{"unknown key", "({foo: 1})", `{"foo": 1}`, "exit 0", allow(), nil},
		{"text", "'some text'", "some text", "echo some text; exit 1", deny("some text"), nil},
		{"allow not bool", "({allow: 'yes'})", `{"allow":"yes"}`, `printf '%s' '{"allow":"yes"}'; exit 1`, deny(`{"allow":"yes"}`), nil},
		// A JavaScript number or null denies without a message; the same
		// characters on a --proc line are text, so they are the message.
		{"number", "42", "42", "exit 1", deny(""), ptr(deny("42"))},
		{"null", "null", "null", "exit 1", deny(""), ptr(deny("null"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newTestJS(t, tc.js).Evaluate(ctx, r); got != tc.want {
				t.Errorf("--js %s: got %+v, want %+v", tc.js, got, tc.want)
			}
			wantLine := tc.want
			if tc.line2 != nil {
				wantLine = *tc.line2
			}
			if got := newTestProc(t, reply, "RESP="+tc.line).Evaluate(ctx, r); got != wantLine {
				t.Errorf("--proc answering %s: got %+v, want %+v", tc.line, got, wantLine)
			}
			if tc.sh != "" {
				if got := newTestShell(tc.sh).Evaluate(ctx, r); got != tc.want {
					t.Errorf("--sh %s: got %+v, want %+v", tc.sh, got, tc.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestParityFields(t *testing.T) {
	needSh(t)
	py := needPython(t)
	script := scriptFile(t, "field.py", fieldScript)
	r := typicalRequest()
	ctx := context.Background()
	for _, tc := range []struct {
		field string   // dotted path in r
		env   []string // the --sh variables carrying it
		want  string
	}{
		{"url", []string{"HTTPJAIL_URL", "EBPFJAIL_URL"}, r.URL},
		{"method", []string{"HTTPJAIL_METHOD", "EBPFJAIL_METHOD"}, r.Method},
		{"scheme", []string{"HTTPJAIL_SCHEME", "EBPFJAIL_SCHEME"}, r.Scheme},
		{"host", []string{"HTTPJAIL_HOST", "EBPFJAIL_HOST"}, r.Host},
		{"port", []string{"EBPFJAIL_PORT"}, strconv.Itoa(r.Port)},
		{"path", []string{"HTTPJAIL_PATH", "EBPFJAIL_PATH"}, r.Path},
		{"requester_ip", []string{"HTTPJAIL_REQUESTER_IP", "EBPFJAIL_REQUESTER_IP"}, r.RequesterIP},
		{"proc.pid", []string{"EBPFJAIL_PID"}, "41234"},
		{"proc.ppid", []string{"EBPFJAIL_PPID"}, "41200"},
		{"proc.uid", []string{"EBPFJAIL_UID"}, "1000"},
		{"proc.comm", []string{"EBPFJAIL_COMM"}, r.Proc.Comm},
		{"proc.exe", []string{"EBPFJAIL_EXE"}, r.Proc.Exe},
	} {
		t.Run(tc.field, func(t *testing.T) {
			want := deny(tc.want)
			if got := newTestJS(t, "({deny_message: String(r."+tc.field+")})").Evaluate(ctx, r); got != want {
				t.Errorf("--js: got %+v, want %+v", got, want)
			}
			// Also shows that the program string is split into argv.
			if got := newTestProc(t, py+" -u "+script+" field "+tc.field).Evaluate(ctx, r); got != want {
				t.Errorf("--proc: got %+v, want %+v", got, want)
			}
			for _, name := range tc.env {
				if got := newTestShell(`printf '%s' "$`+name+`"; exit 1`).Evaluate(ctx, r); got != want {
					t.Errorf("--sh $%s: got %+v, want %+v", name, got, want)
				}
			}
		})
	}
}

// TestParityRequest is httpjail's json_parity test proper: the request the
// JavaScript rule sees and the one the --proc program reads are the same
// JSON object.
func TestParityRequest(t *testing.T) {
	py := needPython(t)
	script := scriptFile(t, "field.py", fieldScript)
	r := typicalRequest()
	r.Path = `/a"b\c<d>&é`
	ctx := context.Background()
	fromJS := newTestJS(t, "({deny_message: JSON.stringify(r)})").Evaluate(ctx, r)
	fromProc := newTestProc(t, py+" "+script+" echo").Evaluate(ctx, r)
	var js, proc map[string]any
	if err := json.Unmarshal([]byte(fromJS.DenyMessage), &js); err != nil {
		t.Fatalf("--js message %q: %v", fromJS.DenyMessage, err)
	}
	if err := json.Unmarshal([]byte(fromProc.DenyMessage), &proc); err != nil {
		t.Fatalf("--proc message %q: %v", fromProc.DenyMessage, err)
	}
	if !reflect.DeepEqual(js, proc) {
		t.Errorf("--js saw %v\n--proc saw %v", js, proc)
	}
	if len(js) != 8 {
		t.Errorf("request has %d keys, want 8: %v", len(js), js)
	}
}
