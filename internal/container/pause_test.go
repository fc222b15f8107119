package container

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPauseProgramSleepsUntilKilled(t *testing.T) {
	p, err := WritePause(t.TempDir())
	if err != nil {
		t.Skip(err) // no pause program for this machine
	}
	c := exec.Command(p)
	if err := c.Start(); err != nil {
		t.Fatalf("start pause program: %v", err)
	}
	defer c.Wait()
	defer c.Process.Kill()
	time.Sleep(100 * time.Millisecond)
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(c.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The state follows the command name's closing parenthesis.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if f[0] != "S" {
		t.Errorf("pause program state: got %q, want S (sleeping)", f[0])
	}
}
