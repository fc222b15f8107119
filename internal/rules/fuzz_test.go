package rules

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// resultSeeds are answers rules really give, and the corners ParseResult
// documents.
var resultSeeds = []string{
	"true",
	"false",
	" true\n",
	"True",
	"",
	"{}",
	`{"foo":1}`,
	`{"allow":true}`,
	`{"allow":false}`,
	`{"allow":null,"deny_message":null}`,
	`{"allow":false,"deny_message":"not on the list"}`,
	`{"deny_message":"no \u00e9 \ud83d\ude00"}`,
	`{"deny_message":"\ud800"}`,
	`{"allow":true,"deny_message":"dropped"}`,
	`{"allow":{"max_tx_bytes":1024}}`,
	`{"allow":{"max_tx_bytes":0}}`,
	`{"allow":{"max_tx_bytes":18446744073709551615}}`,
	`{"allow":{"max_tx_bytes":18446744073709551616}}`,
	`{"allow":{"max_tx_bytes":1e3}}`,
	`{"allow":{"max_tx_bytes":-1}}`,
	`{"allow":{}}`,
	`{"allow":"yes"}`,
	`{"allow":false,"allow":true}`,
	`{"Allow":false}`,
	`[true,null]`,
	`[false,"array form"]`,
	`[true]`,
	`{"allow":true}{"allow":false}`,
	`{"allow":true} x`,
	`{"allow":{"max_tx_bytes":1,"x":` + strings.Repeat("[", 130) + strings.Repeat("]", 130) + `}}`,
	"not json at all",
}

// FuzzParseResult feeds arbitrary answers to ParseResult: it must never
// panic, and its Verdict must be one the proxy can act on unambiguously.
func FuzzParseResult(f *testing.F) {
	for _, s := range resultSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v := ParseResult(text)
		checkRuleVerdict(t, text, v)
		// Whitespace around the answer never changes it.
		if w := ParseResult(" \t" + text + "\r\n"); w != v {
			t.Fatalf("ParseResult(%q) = %+v, but with whitespace around it %+v", text, v, w)
		}
		// What the verdict says, written back as JSON, reads the same.
		var back string
		switch {
		case v.MaxTxBytes > 0:
			back = `{"allow":{"max_tx_bytes":` + jsonText(t, v.MaxTxBytes) + `}}`
		case v.Allow:
			back = `{"allow":true}`
		case !utf8.ValidString(v.DenyMessage):
			return // encoding/json would replace the invalid bytes
		default:
			back = `{"allow":false,"deny_message":` + jsonText(t, v.DenyMessage) + `}`
		}
		if w := ParseResult(back); w != v {
			t.Fatalf("ParseResult(%q) = %+v, but its JSON form %q gives %+v", text, v, back, w)
		}
	})
}

func jsonText(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkRuleVerdict checks the invariants of a verdict parsed from a rule's
// answer text.
func checkRuleVerdict(t *testing.T, text string, v Verdict) {
	t.Helper()
	if v.Reason != reasonRule {
		t.Fatalf("ParseResult(%q): Reason %q, want %q", text, v.Reason, reasonRule)
	}
	if v.Allow && v.DenyMessage != "" {
		t.Fatalf("ParseResult(%q): allows with deny message %q", text, v.DenyMessage)
	}
	if v.MaxTxBytes < 0 {
		t.Fatalf("ParseResult(%q): MaxTxBytes %d", text, v.MaxTxBytes)
	}
	if v.MaxTxBytes > 0 && !v.Allow {
		t.Fatalf("ParseResult(%q): denies with MaxTxBytes %d", text, v.MaxTxBytes)
	}
	// Only JSON can carry a message of its own; other text denies with
	// itself, trimmed, as the message (or allows: "true").
	if tt := strings.TrimSpace(text); !strings.HasPrefix(tt, "{") && !strings.HasPrefix(tt, "[") {
		if want := (Verdict{DenyMessage: tt, Reason: reasonRule}); tt == "true" || tt == "false" {
			if v != (Verdict{Allow: tt == "true", Reason: reasonRule}) {
				t.Fatalf("ParseResult(%q) = %+v", text, v)
			}
		} else if v != want {
			t.Fatalf("ParseResult(%q) = %+v, want %+v", text, v, want)
		}
	}
}

// FuzzLineProcessReply is the --proc reply path: whatever the program
// writes on its stdout, the engine reads one line of it (exchange) and
// turns it into a Verdict (ParseResult), never panicking or hanging, and
// never reading more than that first line.
func FuzzLineProcessReply(f *testing.F) {
	for _, s := range resultSeeds {
		f.Add([]byte(s + "\n"))
	}
	for _, s := range []string{
		"true",                  // a last line without a newline still counts
		"true\nfalse\n",         // only the first line is this request's answer
		"\n",                    // empty answer: an error, never an allow
		"   \t\r\n",             // blank
		"\ntrue\n",              // blank first line
		"true\r\n",              // CRLF
		"{\"allow\":\n true}\n", // JSON split over lines: the first line is garbage
		"\x00\xff\xfe true\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		c, drained := fakeLineChild(t, reply)
		ans, err := c.exchange(context.Background(), []byte(`{"url":"http://example.com/"}`+"\n"), time.Now().Add(10*time.Second))
		c.stdin.Close()
		c.stdout.Close()
		<-drained

		first := reply
		if i := bytes.IndexByte(reply, '\n'); i >= 0 {
			first = reply[:i+1]
		}
		want := strings.TrimSpace(string(first))
		if err != nil {
			// An empty, blank or over-long first line, or none at all, is
			// an error (never an answer): the program is restarted and,
			// failing again, the request denied.
			if want != "" && len(first) <= maxLine {
				t.Fatalf("exchange(%q): %v, want answer %q", reply, err, want)
			}
			return
		}
		if len(first) > maxLine {
			t.Fatalf("exchange: accepted a %d-byte line", len(first))
		}
		if ans != want {
			t.Fatalf("exchange(%q): answer %q, want %q", reply, ans, want)
		}
		v := ParseResult(ans)
		checkRuleVerdict(t, ans, v)
		if w := ParseResult(string(first)); w != v {
			t.Fatalf("line %q: ParseResult of the trimmed answer %+v, of the raw line %+v", first, v, w)
		}
	})
}

// fakeLineChild is a lineChild whose "program" already wrote reply and
// exited (its stdout ends after reply). drained is closed once the request
// it was sent has been read away.
func fakeLineChild(t *testing.T, reply []byte) (*lineChild, <-chan struct{}) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, inR)
		inR.Close()
	}()
	go func() {
		outW.Write(reply)
		outW.Close()
	}()
	return &lineChild{stdin: inW, stdout: outR, rd: bufio.NewReader(outR), done: make(chan struct{})}, drained
}

// fuzzJSRule touches every field of r in every way a rule can (property
// reads, Object.keys, "in", spread, JSON.stringify, assignment, delete) and
// answers with a deny message: r as JSON, or "BAD: " and what was wrong.
const fuzzJSRule = `
const bad = [];
const keys = Object.keys(r).join(",");
const pkeys = Object.keys(r.proc).join(",");
if (keys !== "url,method,scheme,host,port,path,requester_ip,proc") bad.push("keys " + keys);
if (pkeys !== "pid,ppid,uid,comm,exe") bad.push("proc keys " + pkeys);
for (const k of ["url", "method", "scheme", "host", "path", "requester_ip"]) {
	if (typeof r[k] !== "string" || !(k in r)) bad.push(k + " is " + typeof r[k]);
}
for (const k of ["comm", "exe"]) {
	if (typeof r.proc[k] !== "string") bad.push("proc." + k + " is " + typeof r.proc[k]);
}
for (const k of ["pid", "ppid", "uid"]) {
	if (!Number.isInteger(r.proc[k]) || r.proc[k] < 0) bad.push("proc." + k + " is " + r.proc[k]);
}
if (!Number.isInteger(r.port)) bad.push("port is " + r.port);
if ("nope" in r || r.nope !== undefined) bad.push("nope in r");
const s = JSON.stringify(r);
const copy = {...r, proc: {...r.proc}};
if (JSON.stringify(copy) !== s) bad.push("spread differs: " + JSON.stringify(copy));
if (JSON.stringify(JSON.parse(s)) !== s) bad.push("JSON round trip differs");
const u = r.url, h = r.host;
r.url = "changed";
delete r.host;
r.extra = 1;
if (r.url !== "changed" || "host" in r || r.host !== undefined || r.extra !== 1) bad.push("assignment or delete lost");
if (Object.keys(r).join(",") !== "url,method,scheme,port,path,requester_ip,proc,extra") bad.push("keys after delete " + Object.keys(r).join(","));
r.host = h;
if (r.host !== h || u.length < 0) bad.push("re-adding host lost");
bad.length ? {deny_message: "BAD: " + bad.join("; ")} : {deny_message: s};
`

// FuzzJSRequestObject builds requests from arbitrary field values and runs
// a rule touching every field: the rule must see exactly the request, as
// the plain object httpjail builds, and answer within its timeout.
func FuzzJSRequestObject(f *testing.F) {
	type seed struct {
		url, method, host, path, comm, exe string
		port                               int
		pid                                uint32
	}
	for _, s := range []seed{
		{"https://example.com/", "GET", "example.com", "/", "curl", "/usr/bin/curl", 443, 1234},
		{"http://[2001:db8::1]:8080/a/b?q=1", "POST", "2001:db8::1", "/a/b", "python3", "/usr/bin/python3.12", 8080, 1},
		{"http://xn--bcher-kva.example/%C3%A9", "PUT", "xn--bcher-kva.example", "/é", "node", "/usr/local/bin/node", 80, 99999},
		{"tcp://10.0.0.1:22", "CONNECT", "10.0.0.1", "", "ssh", "/usr/bin/ssh", 22, 0},
		{"dns://example.com", "A", "example.com", "", "dig", "", 53, 4294967295},
		{"", "", "", "", "", "", 0, 0},
		{"http://a/\u2028\u2029</script>&", "GET", "a", "\"quoted\"\\", "we\x00ird", "\xff\xfe", -1, 7},
		{"http://a/" + strings.Repeat("x", 300), "PROPFIND", "a", "/\U0001F600", "comm with spaces", "/proc/self/exe (deleted)", 65535, 42},
	} {
		f.Add(s.url, s.method, s.host, s.path, s.comm, s.exe, s.port, s.pid)
	}
	const timeout = 2 * time.Second
	js, err := NewJS(fuzzJSRule, "fuzz.js", JSOptions{Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, url, method, host, path, comm, exe string, port int, pid uint32) {
		req := &Request{
			URL: url, Method: method, Scheme: "https", Host: host, Port: port, Path: path,
			RequesterIP: "127.0.0.1",
			Proc:        Proc{PID: pid, PPID: pid / 2, UID: pid % 65536, Comm: comm, Exe: exe},
		}
		orig := *req
		start := time.Now()
		v := js.Evaluate(context.Background(), req)
		if d := time.Since(start); d > timeout+time.Second {
			t.Fatalf("Evaluate took %v, timeout %v", d, timeout)
		}
		if *req != orig {
			t.Fatalf("the rule changed the Go request: %+v, was %+v", *req, orig)
		}
		if v.Reason != reasonRule || v.Allow {
			t.Fatalf("Evaluate(%+v) = %+v, want a deny from the rule", orig, v)
		}
		if strings.HasPrefix(v.DenyMessage, "BAD: ") {
			t.Fatalf("Evaluate(%+v): %s", orig, v.DenyMessage)
		}
		var got Request
		if err := json.Unmarshal([]byte(v.DenyMessage), &got); err != nil {
			t.Fatalf("Evaluate(%+v): JSON.stringify(r) = %q: %v", orig, v.DenyMessage, err)
		}
		want := orig
		for _, s := range []*string{&want.URL, &want.Method, &want.Scheme, &want.Host, &want.Path, &want.RequesterIP, &want.Proc.Comm, &want.Proc.Exe} {
			*s = runesOf(*s)
		}
		if jsSafeInt(port) && got != want {
			t.Fatalf("JSON.stringify(r) = %s\ndecodes to %+v\nwant       %+v", v.DenyMessage, got, want)
		}
	})
}

// runesOf is s with each invalid UTF-8 byte replaced by U+FFFD, as goja
// reads a Go string.
func runesOf(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// jsSafeInt reports whether n survives a trip through a JavaScript number.
func jsSafeInt(n int) bool { return n >= -(1<<53) && n <= 1<<53 }
