//go:build linux

package jail

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestIsolationLayersSayWhatHoldsAndWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		iso          Isolation
		openAbstract bool
		held         int
		missing      string
	}{
		{"no landlock", Isolation{Err: errors.New("landlock: EOPNOTSUPP")}, false, 0, "Landlock (landlock: EOPNOTSUPP)"},
		{"ptrace only", Isolation{ABI: 5}, false, 1, "Landlock scopes (ABI 5 < 6"},
		{"everything", Isolation{ABI: 7}, false, 3, ""},
		{"abstract by name", Isolation{ABI: 7}, true, 3, ""},
	} {
		held, missing := tc.iso.Layers(tc.openAbstract)
		if len(held) != tc.held {
			t.Errorf("%s: %d layers hold (%q), want %d", tc.name, len(held), held, tc.held)
		}
		got := strings.Join(missing, "; ")
		if (tc.missing == "") != (got == "") || !strings.Contains(got, tc.missing) {
			t.Errorf("%s: missing %q, want it to contain %q", tc.name, got, tc.missing)
		}
	}
}

func TestProbeIsolationAgreesWithItsError(t *testing.T) {
	iso := ProbeIsolation()
	if (iso.ABI == 0) != (iso.Err != nil) {
		t.Fatalf("got ABI %d, err %v: want exactly one", iso.ABI, iso.Err)
	}
}

// TestPrivilegedRestrictSelfEachABI runs a process from a thread in a domain
// made as for each ABI and checks what it may do to a process outside.
func TestPrivilegedRestrictSelfEachABI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (landlock_restrict_self without no_new_privs needs CAP_SYS_ADMIN)")
	}
	if real := ProbeIsolation(); real.ABI < landlockABIScopes {
		t.Skipf("Landlock ABI %d here: cannot try the scopes", real.ABI)
	}
	// Both sides unprivileged, as the jailed user and that user's other
	// processes are (a root with CAP_SYS_ADMIN may read environ anyway).
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	outside := exec.Command("sleep", "60")
	outside.SysProcAttr = nobody
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { outside.Process.Kill(); outside.Wait() }()
	pid := strconv.Itoa(outside.Process.Pid)
	for _, tc := range []struct {
		abi             int
		environ, signal bool // allowed?
	}{
		{abi: 5, environ: false, signal: true},
		{abi: 7, environ: false, signal: false},
	} {
		script := "cat /proc/" + pid + "/environ >/dev/null 2>&1 && echo environ; kill -0 " + pid + " 2>/dev/null && echo signal; true"
		out := make(chan string, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread carries the domain and dies with the goroutine
			if err := restrictSelf(Isolation{ABI: tc.abi}, false); err != nil {
				out <- "restrict: " + err.Error()
				return
			}
			cmd := exec.Command("sh", "-c", script)
			cmd.SysProcAttr = nobody
			b, err := cmd.CombinedOutput()
			if err != nil {
				out <- "run: " + err.Error()
				return
			}
			out <- string(b)
		}()
		got := <-out
		want := ""
		if tc.environ {
			want += "environ\n"
		}
		if tc.signal {
			want += "signal\n"
		}
		if got != want {
			t.Errorf("ABI %d: the process in the domain did %q, want %q", tc.abi, got, want)
		}
	}
	// Outside any domain, both work: the control.
	control := exec.Command("sh", "-c", "cat /proc/"+pid+"/environ >/dev/null && echo environ; kill -0 "+pid+" && echo signal")
	control.SysProcAttr = nobody
	b, _ := control.CombinedOutput()
	if string(b) != "environ\nsignal\n" {
		t.Errorf("outside a domain: got %q, want environ and signal to work", b)
	}
}
