package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/control"
)

// answerHeld follows the jail of supervisor pid and answers each request
// it holds by its path with answers' entry, through `ebpfjail answer`; a
// path without an entry is left to time out. It returns the paths asked.
func answerHeld(t *testing.T, pid int, answers map[string]string) <-chan []string {
	return answerHeldAfter(t, pid, answers, 0)
}

// answerHeldAfter is answerHeld, answering no sooner than after has passed
// since the first request was held.
func answerHeldAfter(t *testing.T, pid int, answers map[string]string, after time.Duration) <-chan []string {
	t.Helper()
	c, err := control.Dial(context.Background(), controlSocket(t, pid), control.OpSubscribe)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan []string, 1)
	go func() {
		defer c.Close()
		var paths []string
		var first time.Time
		for {
			m, err := c.Next()
			if err != nil || m.End != nil {
				asked <- paths
				return
			}
			if m.Pending == nil {
				continue
			}
			path := m.Pending.URL[strings.LastIndex(m.Pending.URL, "/"):]
			paths = append(paths, path)
			if first.IsZero() {
				first = time.Now()
			}
			time.Sleep(time.Until(first.Add(after)))
			if a, ok := answers[path]; ok {
				if out, err := exec.Command(bin, "answer", m.Pending.ID, a).CombinedOutput(); err != nil {
					t.Errorf("answer %s %s: %v\n%s", m.Pending.ID, a, err, out)
				}
			}
		}
	}()
	return asked
}

func TestPrivilegedAskHoldsDeniedRequestsUntilAPersonAnswers(t *testing.T) {
	s := newSite(t)
	get := func(path string) string {
		return "curl -s -o /dev/null -w '%{http_code}\\n' -m 30 http://denied.test" + path
	}
	script := strings.Join([]string{get("/deny"), get("/timeout"), get("/once"), get("/always"), get("/after")}, "; ")
	cmd := ebpfjail(t, "--user", "nobody", "--js", allowRule, "--ask", "--ask-timeout", "2s",
		"--resolve", "denied.test:"+s.h.IPv4.String(), "--", "sh", "-c", script)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); noJailsLeft(t) }()
	asked := answerHeld(t, cmd.Process.Pid, map[string]string{"/deny": "deny", "/once": "allow", "/always": "always"})
	start := time.Now()
	cmd.Wait()
	if got, want := strings.Fields(out.String()), []string{"403", "403", "200", "200", "200"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("statuses %v, want %v (deny, timeout, once, always, after)", got, want)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("the unanswered request was denied after %v, before --ask-timeout", d)
	}
	if got := <-asked; strings.Join(got, " ") != "/deny /timeout /once /always" {
		t.Errorf("asked about %v, want /deny /timeout /once /always (not /after: always covers it)", got)
	}
	var reached []string
	for _, r := range s.h.Requests() {
		if strings.HasPrefix(r, "denied.test") {
			reached = append(reached, r)
		}
	}
	if strings.Join(reached, ",") != "denied.test /once,denied.test /always,denied.test /after" {
		t.Errorf("the origin received %q, want /once, /always and /after once each", reached)
	}
}

// A person may take the whole default --ask-timeout (60 s) to answer: a
// curl and a node fetch over HTTPS, held that long, do not give up on their
// own. Answered just before it, they get through; never answered, they get
// ebpfjail's 403 when it ends, not an error of their own.
func TestPrivilegedAskedClientsWaitOutTheDefaultTimeout(t *testing.T) {
	requireTool(t, "node")
	s := newSite(t)
	const after = 55 * time.Second
	node := `fetch(process.argv[1]).then(r => console.log(process.argv[2] + " " + r.status)).catch(e => { console.log(process.argv[2], "ERR", e.cause || e); process.exit(1) })`
	curl := func(name string) string {
		return "curl -s -o /dev/null -w '" + name + " %{http_code}\\n' https://denied.test/" + name + " & "
	}
	nodeRun := func(name string) string {
		return "node -e '" + node + "' https://denied.test/" + name + " " + name + " & "
	}
	script := curl("curl-allowed") + curl("curl-unanswered") + nodeRun("node-allowed") + nodeRun("node-unanswered") + "wait"
	cmd := ebpfjail(t, "--user", "nobody", "--js", allowRule, "--ask",
		"--resolve", "denied.test:"+s.h.IPv4.String(), "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+s.ca.PEMPath)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); noJailsLeft(t) }()
	start := time.Now()
	asked := answerHeldAfter(t, cmd.Process.Pid, map[string]string{"/curl-allowed": "allow", "/node-allowed": "allow"}, after)
	cmd.Wait()
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(got)
	want := []string{"curl-allowed 200", "curl-unanswered 403", "node-allowed 200", "node-unanswered 403"}
	if !slices.Equal(got, want) {
		t.Errorf("clients printed %q, want %q", got, want)
	}
	if d := time.Since(start); d < time.Minute {
		t.Errorf("the clients finished after %v, before the default --ask-timeout of 1m", d)
	}
	if got := <-asked; len(got) != 4 {
		t.Errorf("asked about %v, want the four requests", got)
	}
	for path, want := range map[string]int{"/curl-allowed": 1, "/node-allowed": 1, "/curl-unanswered": 0, "/node-unanswered": 0} {
		if n := countPrefix(s.h.Requests(), "denied.test "+path); n != want {
			t.Errorf("the origin received %s %d times, want %d (all: %v)", path, n, want, s.h.Requests())
		}
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestPrivilegedInteractiveWatchAnswersByKey(t *testing.T) {
	requireTool(t, "tmux")
	s := newSite(t)
	m := newTmux(t, "ebpfjail-watch")
	cmd := ebpfjail(t, "--user", "nobody", "--js", allowRule, "--ask", "--resolve", "denied.test:"+s.h.IPv4.String(),
		"--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "30", "http://denied.test/by-key")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); noJailsLeft(t) }()
	// Watch only this jail (its id starts with its supervisor's pid): other
	// jails on the machine would scroll the screen. The held request is
	// offered to a watcher that comes later.
	prefix := strconv.Itoa(cmd.Process.Pid) + "-"
	waitFor(t, "the jail's control socket", func() bool {
		socks, _ := filepath.Glob("/run/ebpfjail/jails/" + prefix + "*.sock")
		return len(socks) > 0
	})
	// watch ends with the jail; the shell keeps its screen to be read.
	m.run("new-session", "-d", "-s", "jail", "-x", "200", "-y", "30", "sh", "-c", `env "$1" "$2" watch "$3"; sleep 60`, "sh", owner(t), bin, prefix)
	m.waitScreen("ASK")
	m.waitScreen("[y] allow once")
	m.run("send-keys", "-t", "jail", "y")
	cmd.Wait()
	if out.String() != "200" {
		t.Errorf("curl got %q, want 200 after the key; screen:\n%s", out.String(), m.screen())
	}
	m.waitScreen("person: allow once")
	if got := s.h.Requests(); !contains1(got, "denied.test /by-key") {
		t.Errorf("the origin received %q, want denied.test /by-key", got)
	}
}
