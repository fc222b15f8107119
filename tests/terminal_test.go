package tests

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// tmux drives a real terminal on a private server socket.
type tmux struct {
	t      *testing.T
	socket string
}

// newTmux starts nothing yet: the first new-session starts a tmux server
// on a socket named for this process, killed when the test ends. The
// ebpfjail the test types into it holds the shared sweep lock meanwhile.
func newTmux(t *testing.T, name string) tmux {
	testutil.SweepShared(t)
	m := tmux{t: t, socket: fmt.Sprintf("%s-%d", name, os.Getpid())}
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	return m
}

func (m tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", m.socket}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m tmux) screen() string {
	out, _ := exec.Command("tmux", "-L", m.socket, "capture-pane", "-p", "-t", "jail").CombinedOutput()
	return string(out)
}

func (m tmux) waitScreen(want string) {
	m.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(m.screen(), want) {
		if time.Now().After(deadline) {
			m.t.Fatalf("screen never showed %q; it shows:\n%s", want, m.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPrivilegedInteractiveShellOwnsTheTerminal(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "tmux")
	requireTool(t, "bash")
	m := newTmux(t, "ebpfjail-test")
	// After ebpfjail exits, its status is printed and the pane stays.
	cmd := fmt.Sprintf("%s -v --user nobody -- bash --norc --noprofile -i; echo EBPFJAIL-EXIT=$?; sleep 60", bin)
	m.run("new-session", "-d", "-s", "jail", "-x", "120", "-y", "30", "env", owner(t), "PS1=jailed$ ", "sh", "-c", cmd)

	m.waitScreen("jailed$")
	m.run("send-keys", "-t", "jail", "echo typed-$((40+2)) in $(grep ^0:: /proc/self/cgroup)", "Enter")
	m.waitScreen("typed-42 in 0::/ebpfjail/")

	// ^C goes to the foreground job, not to ebpfjail: the shell survives.
	m.run("send-keys", "-t", "jail", "sleep 100", "Enter")
	time.Sleep(300 * time.Millisecond)
	m.run("send-keys", "-t", "jail", "C-c")
	m.run("send-keys", "-t", "jail", "echo alive-$((2+2))", "Enter")
	m.waitScreen("alive-4")
	if strings.Contains(m.screen(), "forwarding signal") {
		t.Errorf("^C reached ebpfjail (it forwarded it):\n%s", m.screen())
	}

	m.run("send-keys", "-t", "jail", "exit 3", "Enter")
	m.waitScreen("EBPFJAIL-EXIT=3")
	noJailsLeft(t)
}

func TestPrivilegedCtrlZStopsTheJailAndFgResumesIt(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "tmux")
	requireTool(t, "bash")
	m := newTmux(t, "ebpfjail-testz")
	// The outer shell is the user's own (not jailed), with job control.
	m.run("new-session", "-d", "-s", "jail", "-x", "120", "-y", "30", "env", owner(t), "PS1=outer$ ", "bash", "--norc", "--noprofile", "-i")
	m.waitScreen("outer$")
	m.run("send-keys", "-t", "jail", bin+" -v --user nobody -- cat", "Enter")
	m.waitScreen("command started")
	m.run("send-keys", "-t", "jail", "C-z")
	m.waitScreen("Stopped")
	m.run("send-keys", "-t", "jail", "echo outer-$((3+3))", "Enter")
	m.waitScreen("outer-6")
	m.run("send-keys", "-t", "jail", "fg", "Enter")
	time.Sleep(300 * time.Millisecond)
	m.run("send-keys", "-t", "jail", "typed-to-cat", "Enter")
	// cat echoes the line back: the terminal echo plus cat's copy.
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(m.screen(), "typed-to-cat") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cat did not resume with the terminal:\n%s", m.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.run("send-keys", "-t", "jail", "C-d")
	m.run("send-keys", "-t", "jail", "echo status-$?", "Enter")
	m.waitScreen("status-0")
	noJailsLeft(t)
}

// A command started on a terminal gets default signal dispositions: an
// ignored SIGTTIN would make its background reads fail with EIO instead of
// stopping it.
func TestPrivilegedCommandOnATerminalIgnoresNoSignals(t *testing.T) {
	testutil.RequireRoot(t)
	requireTool(t, "tmux")
	m := newTmux(t, "ebpfjail-testsig")
	// The pane starts with default dispositions (tmux panes here may
	// inherit SIGTTIN/SIGTTOU ignored), so any ignored signal is ebpfjail's.
	cmd := fmt.Sprintf("grep SigIgn /proc/self/status | sed s/SigIgn/outside/; %s --user nobody -- grep SigIgn /proc/self/status; echo done-$((1+1)); sleep 60", bin)
	m.run("new-session", "-d", "-s", "jail", "-x", "120", "-y", "30", "env", "--default-signal", owner(t), "sh", "-c", cmd)
	m.waitScreen("done-2")
	got := m.screen()
	outside := regexp.MustCompile(`outside:\s+([0-9a-f]+)`).FindStringSubmatch(got)
	inside := regexp.MustCompile(`SigIgn:\s+([0-9a-f]+)`).FindStringSubmatch(got)
	if outside == nil || outside[1] != "0000000000000000" {
		t.Skipf("could not start the pane with default dispositions:\n%s", got)
	}
	if inside == nil || inside[1] != outside[1] {
		t.Errorf("ignored signals: got %v inside the jail, want %v as outside:\n%s", inside, outside, got)
	}
}
