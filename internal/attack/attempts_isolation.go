//go:build linux

package attack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// The isolation attempts aim at processes outside the jail: a victim of the
// jailed user that the check starts unjailed (RunVictim), and the jail's
// --proc rule program (RunRule). A victim that is reached sends the
// attempt's name to the target, so the canary is the witness.

// Victim is the unjailed process of the jailed user the attempts aim at.
type Victim struct {
	PID int `json:"pid"`
	// Addr is a buffer the victim sends to the target whenever someone
	// else writes into it.
	Addr uint64 `json:"addr"`
	// FD is an unconnected TCP socket the victim holds: created outside
	// the jail's cgroup, nothing steers it.
	FD int `json:"fd"`
	// Secret is in the victim's environment (VictimSecretVar).
	Secret string `json:"secret"`
}

// VictimArg is the hidden argument that makes ebpfjail the victim; RuleArg
// makes it the --proc rule program of the attack jail (allowing only Decoy).
const (
	VictimArg       = "__attack-victim"
	RuleArg         = "__attack-rule"
	VictimSecretVar = "EBPFJAIL_ATTACK_SECRET"
)

// victimBuf is the size of the victim's buffer.
const victimBuf = 64

func isolationAttempts() []Attempt {
	return []Attempt{
		{Name: "victim-ptrace", What: "ptrace an unjailed process of the same user and poke a request into it", Run: victimPtrace},
		{Name: "victim-memory", What: "process_vm_writev into an unjailed process of the same user", Run: victimVMWrite},
		{Name: "victim-proc-mem", What: "write /proc/PID/mem of an unjailed process of the same user", Run: victimProcMem},
		{Name: "victim-pidfd-getfd", What: "take an unjailed process's socket with pidfd_getfd, connect it", Run: victimPidfdGetfd},
		{Name: "victim-environ", What: "read /proc/PID/environ of an unjailed process of the same user", Run: victimEnviron},
		{Name: "victim-signal", What: "signal an unjailed process of the same user (it then sends)", Run: victimSignal},
		{Name: "unix-abstract", What: "connect to an abstract unix socket bound outside the jail", Run: unixAbstract},
		{Name: "proc-verdict", What: "write allow verdicts into the --proc rule program's pipe (pidfd_getfd)", Run: procVerdict},
	}
}

// victimPayload is what a reached victim is made to send for attempt.
func victimPayload(attempt string) []byte {
	return []byte("GET /" + attempt + "\x00")
}

func victimPtrace(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	pid := s.Victim.PID
	var st Status
	var d string
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: ptrace requests come from the attaching thread
		if err := unix.PtraceAttach(pid); err != nil {
			st, d = Blocked, fmt.Sprintf("ptrace(ATTACH, %d): %s", pid, errText(err))
			return
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		_, err := unix.PtracePokeData(pid, uintptr(s.Victim.Addr), victimPayload("victim-ptrace"))
		unix.PtraceDetach(pid)
		victimWait()
		st, d = Leaked, fmt.Sprintf("attached to pid %d (poke: %s)", pid, errText(err))
	}()
	<-done
	return st, d
}

// victimWait gives a reached victim the time to send what it was made to,
// before the next attempt overwrites its buffer.
func victimWait() { time.Sleep(500 * time.Millisecond) }

func victimVMWrite(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	p := victimPayload("victim-memory")
	local := []unix.Iovec{{Base: &p[0]}}
	local[0].SetLen(len(p))
	remote := []unix.RemoteIovec{{Base: uintptr(s.Victim.Addr), Len: len(p)}}
	n, err := unix.ProcessVMWritev(s.Victim.PID, local, remote, 0)
	if err != nil {
		return Blocked, "process_vm_writev: " + errText(err)
	}
	victimWait()
	return Leaked, fmt.Sprintf("wrote %d bytes into pid %d", n, s.Victim.PID)
}

func victimProcMem(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	path := "/proc/" + strconv.Itoa(s.Victim.PID) + "/mem"
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Blocked, "open " + path + ": " + errText(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(victimPayload("victim-proc-mem"), int64(s.Victim.Addr)); err != nil {
		return Blocked, "write " + path + ": " + errText(err)
	}
	victimWait()
	return Leaked, "wrote into " + path
}

func victimPidfdGetfd(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	pidfd, err := unix.PidfdOpen(s.Victim.PID, 0)
	if err != nil {
		return Blocked, "pidfd_open: " + errText(err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, s.Victim.FD, 0)
	if err != nil {
		return Blocked, "pidfd_getfd: " + errText(err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrInet4{Port: int(s.HTTP), Addr: s.V4.As4()}
	if err := unix.Connect(fd, sa); err != nil {
		return Blocked, "took the socket; connect: " + errText(err)
	}
	req := "GET /victim-pidfd-getfd HTTP/1.0\r\nHost: " + Forbidden + "\r\n\r\n"
	if _, err := unix.Write(fd, []byte(req)); err != nil {
		return Blocked, "took the socket; write: " + errText(err)
	}
	return Leaked, "sent a request on the victim's socket"
}

func victimEnviron(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	path := "/proc/" + strconv.Itoa(s.Victim.PID) + "/environ"
	b, err := os.ReadFile(path)
	if err != nil {
		return Blocked, "read " + path + ": " + errText(err)
	}
	if bytes.Contains(b, []byte(VictimSecretVar+"="+s.Victim.Secret)) {
		return Leaked, "read the victim's secret from " + path
	}
	return Blocked, fmt.Sprintf("read %d bytes of %s, no secret in them", len(b), path)
}

func victimSignal(s Spec) (Status, string) {
	if s.Victim == nil {
		return Broken, "no victim"
	}
	if err := unix.Kill(s.Victim.PID, unix.SIGUSR1); err != nil {
		return Blocked, "kill: " + errText(err)
	}
	victimWait()
	return Leaked, "signalled the victim"
}

func unixAbstract(s Spec) (Status, string) {
	if s.Abstract == "" {
		return NotApplicable, "no abstract socket to try"
	}
	c, err := net.DialTimeout("unix", s.Abstract, opTimeout)
	if err != nil {
		return Blocked, s.Abstract + ": " + errText(err)
	}
	c.SetDeadline(time.Now().Add(opTimeout))
	io.WriteString(c, "unix-abstract\n")
	c.Close()
	return Leaked, "connected to " + s.Abstract
}

// procVerdict takes stdout of ebpfjail's other children (the rule
// program's verdict pipe), writes "true" into it, and asks for Forbidden.
func procVerdict(s Spec) (Status, string) {
	sup := os.Getppid()
	var forged, details []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil || !bytes.Contains(st, []byte("\nPPid:\t"+strconv.Itoa(sup)+"\n")) {
			continue
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			details = append(details, fmt.Sprintf("pidfd_open(%d): %s", pid, errText(err)))
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, 1, 0)
		unix.Close(pidfd)
		if err != nil {
			details = append(details, fmt.Sprintf("pidfd_getfd(%d): %s", pid, errText(err)))
			continue
		}
		// One line: ebpfjail reads one answer per request.
		unix.Write(fd, []byte("true\n"))
		unix.Close(fd)
		forged = append(forged, strconv.Itoa(pid))
	}
	if len(forged) == 0 {
		if len(details) == 0 {
			return Broken, "found no rule program (no other child of ebpfjail)"
		}
		return Blocked, strings.Join(details, "; ")
	}
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, "forged a verdict in pid " + strings.Join(forged, ",") + "; connect: " + errText(err)
	}
	// An address, not a name: the rule denies it, and a forged allow has
	// ebpfjail dial it, so the target sees the request.
	st, d := exchange(c, get(s.V4.String(), "/proc-verdict"))
	return st, "forged a verdict in pid " + strings.Join(forged, ",") + "; " + d
}

// RunVictim is the victim: it reports itself on w (one JSON Victim line),
// then sends its buffer to the target whenever it changes and a request on
// SIGUSR1, until stdin closes.
func RunVictim(s Spec, w io.Writer) error {
	buf := make([]byte, victimBuf)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("victim socket: %w", err)
	}
	defer unix.Close(fd)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGUSR1)
	v := Victim{PID: os.Getpid(), Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), FD: fd, Secret: os.Getenv(VictimSecretVar)}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return err
	}
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stdinClosed:
			runtime.KeepAlive(buf)
			return nil
		case <-sigs:
			victimSend(s, "GET /victim-signal")
		case <-tick.C:
			if buf[0] == 0 {
				continue
			}
			n := bytes.IndexByte(buf, 0)
			if n < 0 {
				n = len(buf)
			}
			msg := string(buf[:n])
			clear(buf)
			victimSend(s, msg)
		}
	}
}

func victimSend(s Spec, line string) {
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(s.V4, s.HTTP).String(), opTimeout)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	io.WriteString(c, line+" HTTP/1.0\r\nHost: "+Forbidden+"\r\n\r\n")
	io.Copy(io.Discard, io.LimitReader(c, 4096))
}

// RunRule is the attack jail's --proc rule program: rule (RuleFor's
// JavaScript) evaluated by ebpfjail's own engine, one verdict line per
// request line, so the jail decides as a --js rule would.
func RunRule(rule string, r io.Reader, w io.Writer) error {
	js, err := rules.NewJS(rule, "attack rule", rules.JSOptions{})
	if err != nil {
		return fmt.Errorf("compile attack rule: %w", err)
	}
	defer js.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		verdict := "false"
		var req rules.Request
		if json.Unmarshal(sc.Bytes(), &req) == nil {
			switch v := js.Evaluate(context.Background(), &req); {
			case v.Allow && v.MaxTxBytes > 0:
				verdict = fmt.Sprintf(`{"allow": {"max_tx_bytes": %d}}`, v.MaxTxBytes)
			case v.Allow:
				verdict = "true"
			}
		}
		if _, err := fmt.Fprintln(w, verdict); err != nil {
			return err
		}
	}
	return sc.Err()
}
