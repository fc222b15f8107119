package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// forkingProgram is a small program to audit: sh runs a python3 that asks
// a DNS name, then forks a child (no exec) that makes a request of its
// own; then sh runs curl.
const forkingProgram = `import os, socket, urllib.request
socket.getaddrinfo("parent-lookup.allowed.test", 80)
pid = os.fork()
if pid == 0:
    urllib.request.urlopen("http://allowed.test/child", timeout=10).read()
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exited", status)
`

// recordSession runs forkingProgram under --audit --log-json and returns
// the run and the events file.
func recordSession(t *testing.T, s *site) (result, string) {
	t.Helper()
	jsonLog := filepath.Join(t.TempDir(), "events.jsonl")
	script := python(t) + ` -c '` + forkingProgram + `'
curl -sS -o /dev/null -w "curl %{http_code}\n" https://allowed.test/curl`
	args := []string{"--audit", "--log-json", jsonLog, "--user", "nobody",
		"--resolve", "allowed.test:" + s.h.IPv4.String(), "--", "sh", "-c", script}
	r := jail(t, runOpts{env: []string{"SSL_CERT_FILE=" + s.ca.PEMPath}}, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	contains(t, "child", r.stdout, "child exited 0")
	contains(t, "curl", r.stdout, "curl 200")
	return r, jsonLog
}

// auditRow is a process of the --audit table, as a reader sees it.
type auditRow struct {
	depth   int
	comm    string
	pid     int
	details []string
}

// parseAuditTree reads the process lines ("├─ curl pid 12  ...") and the
// lines under each.
func parseAuditTree(table string) []auditRow {
	proc := regexp.MustCompile(`^([│├└─ ]*)(\S+) pid (\d+)`)
	var rows []auditRow
	for _, l := range strings.Split(table, "\n") {
		if m := proc.FindStringSubmatch(l); m != nil {
			pid, _ := strconv.Atoi(m[3])
			rows = append(rows, auditRow{depth: len([]rune(m[1])) / 3, comm: m[2], pid: pid})
		} else if len(rows) > 0 && strings.TrimSpace(l) != "" {
			rows[len(rows)-1].details = append(rows[len(rows)-1].details, strings.Trim(l, "│ "))
		}
	}
	return rows
}

// TestPrivilegedAuditTableIsAProcessTree: the forked child's request is
// listed under the child, itself under the python3 that forked it, itself
// under sh; the parent's DNS name is under the parent.
func TestPrivilegedAuditTableIsAProcessTree(t *testing.T) {
	s := newSite(t)
	r, _ := recordSession(t, s)
	table := r.stderr[strings.Index(r.stderr, "ebpfjail audit:"):]
	t.Logf("audit table:\n%s", table)
	rows := parseAuditTree(table)
	has := func(row auditRow, prefix string) bool {
		for _, d := range row.details {
			if strings.HasPrefix(d, prefix) {
				return true
			}
		}
		return false
	}
	var parent, child = -1, -1
	for i, row := range rows {
		if row.comm != "python3" {
			continue
		}
		if has(row, "allowed.test:80 ") {
			child = i
		} else {
			parent = i
		}
	}
	if parent < 1 || child != parent+1 {
		t.Fatalf("want sh, then python3 (the parent), then its forked child with the request; got rows %+v in\n%s", rows, table)
	}
	sh, p, c := rows[0], rows[parent], rows[child]
	if sh.comm != "sh" || p.depth != sh.depth+1 || c.depth != p.depth+1 || c.pid == p.pid {
		t.Errorf("want sh → python3 → python3 (child), got %+v → %+v → %+v in\n%s", sh, p, c, table)
	}
	if !has(p, "dns: parent-lookup.allowed.test") || has(p, "allowed.test:80 ") {
		t.Errorf("parent: want its DNS name and not the child's request, got %q", p.details)
	}
	var curl bool
	for _, row := range rows {
		curl = curl || row.comm == "curl" && row.depth == sh.depth+1 && has(row, "allowed.test:443 ")
	}
	if !curl {
		t.Errorf("no curl under sh with allowed.test:443 in\n%s", table)
	}
}

// chromium loads page in headless Chromium and returns the DOM after its
// scripts ran, and what Chromium logged (console messages among it). It
// runs as root, so without the sandbox, with a profile of its own, and is
// killed with its helpers (its process group) if it hangs.
func chromium(t *testing.T, page string) (dom, log string) {
	t.Helper()
	requireTool(t, "chromium")
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+profile, "--no-first-run", "--disable-extensions", "--disable-background-networking",
		"--disable-sync", "--disable-component-update", "--enable-logging=stderr", "--v=0",
		"--dump-dom", "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it left, if any
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium did not finish in 90 s; killed\n%s", errb.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleErrors are the lines of a Chromium log that tell of a page's
// script failing: an uncaught exception, a console error, a refused
// (CSP) load or script.
func consoleErrors(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "CONSOLE") && (strings.Contains(l, "Uncaught") || strings.Contains(l, "Error") || strings.Contains(l, "Refused")) {
			out = append(out, l)
		}
	}
	return out
}

// TestPrivilegedReportRendersInChromium: the report of a recorded session
// (plus a refused attempt and a process whose names are markup) renders
// in a real browser without console errors, its script draws the
// timeline, and the tree and the hosts are in the DOM; the markup in the
// names runs nothing.
func TestPrivilegedReportRendersInChromium(t *testing.T) {
	requireTool(t, "chromium")
	t.Run("console errors are seen", func(t *testing.T) {
		page := filepath.Join(t.TempDir(), "bad.html")
		os.WriteFile(page, []byte(`<!DOCTYPE html><p>x</p><script>undefinedFunction()</script>`), 0o644)
		if _, log := chromium(t, page); len(consoleErrors(log)) == 0 {
			t.Fatalf("a page that throws: no console error found in Chromium's log:\n%s", log)
		}
	})
	s := newSite(t)
	_, jsonLog := recordSession(t, s)
	var childPID uint32
	var last time.Time
	for _, e := range readEvents(t, jsonLog) {
		if e.Type == event.TypeRequest && strings.HasSuffix(e.URL, "/child") {
			childPID = e.PID
		}
		last = e.Time
	}
	if childPID == 0 {
		t.Fatalf("no request of the forked child in %s", readFile(jsonLog))
	}
	appendEvents(t, jsonLog, []map[string]any{
		{"v": 1, "type": "refused", "time": last, "pid": childPID, "comm": "python3", "op": "sendmsg", "family": "inet",
			"socktype": "dgram", "proto": "udp", "dst": "198.51.100.9:9999", "count": 2, "reason": "udp is refused in the jail"},
		{"v": 1, "type": "exec", "time": last, "pid": 999999, "comm": "evil", "exe": "/tmp/<script>x</script>",
			"argv": []string{"evil", pwn}},
		{"v": 1, "type": "dns", "time": last, "pid": 999999, "comm": "evil", "name": pwn},
	})
	html := filepath.Join(t.TempDir(), "report.html")
	if r := jail(t, runOpts{}, "report", jsonLog, "-o", html); r.code != 0 {
		t.Fatalf("report: %s", r)
	}
	dom, log := chromium(t, html)
	if errs := consoleErrors(log); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	checkReportDOM(t, dom, childPID)
}

// pwn is a name that would mark the page if any of it ran.
const pwn = `<script>document.documentElement.setAttribute("data-pwned","1")</script><img src=x onerror="document.title='pwned'">`

func checkReportDOM(t *testing.T, dom string, childPID uint32) {
	t.Helper()
	if !strings.Contains(dom, `data-rendered="1"`) {
		t.Fatalf("the page's script did not finish: no data-rendered on <html>:\n%.3000s", dom)
	}
	if regexp.MustCompile(`<html[^>]*data-pwned|<title>pwned|<img`).MatchString(dom) {
		t.Errorf("markup from a process name ran or became an element:\n%s", dom)
	}
	child := strconv.FormatUint(uint64(childPID), 10)
	for what, re := range map[string]string{
		"the child's lane, drawn by the script":      `<g class="lane" data-pid="` + child + `"><line[^>]*></line><text[^>]*>\s*python3 ` + child + `</text>`,
		"the child's request on the timeline":        `<title>[^<]*request allow\s+GET http://allowed.test/child( → [^<]*)?</title>`,
		"the child in the tree, under its parent":    `<div class="proc" data-pid="` + child + `" style="--depth: 2">`,
		"the child's host":                           `data-pid="` + child + `"[\s\S]*?<td class="host">allowed.test:80</td>`,
		"curl's host":                                `<span class="comm">curl</span>[\s\S]*?<td class="host">allowed.test:443</td>`,
		"the parent's DNS name":                      `<span class="name">parent-lookup.allowed.test</span>`,
		"the refused UDP send":                       `<span class="what">udp sendmsg 198.51.100.9:9999</span> <span class="count">×2</span>`,
		"the hostile name, as text":                  `&lt;script&gt;document.documentElement`,
		"the filter's status, written by the script": `<span id="status">\d+ of \d+ processes shown`,
	} {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("%s: no match for %s in the DOM", what, re)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

// appendEvents adds events to a --log-json file.
func appendEvents(t *testing.T, path string, events []map[string]any) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range events {
		if err := json.NewEncoder(f).Encode(e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReportBadInputIsOneErrorAndAHint: a missing file, an empty one and a
// malformed line each give one error line (with the line number) and a
// hint, exit 2, and no page.
func TestReportBadInputIsOneErrorAndAHint(t *testing.T) {
	dir := t.TempDir()
	good := `{"v":1,"type":"dns","time":"2026-01-02T03:04:05Z","pid":1,"name":"a.test"}`
	os.WriteFile(filepath.Join(dir, "empty.jsonl"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte(good+"\n"+good+"\n{\"v\":1,\"type\":\n"), 0o644)
	for file, want := range map[string]string{
		"missing.jsonl": "no such file or directory",
		"empty.jsonl":   "has no events",
		"bad.jsonl":     "line 3 is not an ebpfjail event",
	} {
		out := filepath.Join(dir, file+".html")
		r := jail(t, runOpts{}, "report", filepath.Join(dir, file), "-o", out)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ebpfjail: error: ") ||
			!strings.Contains(lines[0], want) || !strings.HasPrefix(lines[1], "ebpfjail: hint: ") {
			t.Errorf("%s: got %s\nwant exit 2, an error saying %q and a hint", file, r, want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a page was written", file)
		}
	}
}

// TestPrivilegedAuditeeAttemptsAreUnderTheirProcess: every attempt of the
// auditee is in the table under the process that made it: both HTTPS
// hosts, the refused UDP send and raw socket, the DNS server it chose and
// the name as asked under the script; the forked child's request under
// the child, which is under the script.
func TestPrivilegedAuditeeAttemptsAreUnderTheirProcess(t *testing.T) {
	s := newSite(t)
	a := runAuditee(t, s)
	table := a.r.stderr[strings.Index(a.r.stderr, "ebpfjail audit:"):]
	t.Logf("audit table:\n%s", table)
	rows := parseAuditTree(table)
	byPID := map[int]int{}
	for i, row := range rows {
		byPID[row.pid] = i
	}
	pi, ok1 := byPID[int(a.parent)]
	ci, ok2 := byPID[int(a.child)]
	if !ok1 || !ok2 || ci != pi+1 || rows[ci].depth != rows[pi].depth+1 {
		t.Fatalf("want the script (pid %d) and right under it its child (pid %d); got %+v", a.parent, a.child, rows)
	}
	ip := s.h.IPv4.String()
	under := func(row auditRow, want string) {
		for _, d := range row.details {
			if strings.Contains(d, want) {
				return
			}
		}
		t.Errorf("%s pid %d: no line with %q; its lines: %q", row.comm, row.pid, want, row.details)
	}
	for _, want := range []string{"allowed.test:443 ", "denied.test:443 ", "udp sendmsg " + ip + ":9999",
		"socket inet raw icmp", "c2VjcmV0.Exfil.test", "dns servers: ", ip + ":53"} {
		under(rows[pi], want)
	}
	under(rows[ci], "allowed.test:80 ")
	for _, d := range rows[pi].details {
		if strings.HasPrefix(d, "allowed.test:80 ") {
			t.Errorf("the child's request is listed under the script too: %q", rows[pi].details)
		}
	}
}
