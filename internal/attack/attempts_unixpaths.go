//go:build linux

package attack

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The same container engine stand-in as unix-engine, reached by other
// spellings of its path: a denied socket must stay denied however the
// path is written, not only as listed.

// spelling turns the stand-in's path into another way to reach it; undo,
// if not nil, puts back what it changed (the working directory, a symlink).
type spelling func(p string) (addr string, undo func(), err error)

func spellSlashes(p string) (string, func(), error) { return "/" + p, nil, nil }

func spellDot(p string) (string, func(), error) {
	return filepath.Dir(p) + "/./" + filepath.Base(p), nil, nil
}

func spellDotDot(p string) (string, func(), error) {
	d := filepath.Dir(p)
	return d + "/../" + filepath.Base(d) + "/" + filepath.Base(p), nil, nil
}

func spellProcRoot(p string) (string, func(), error) { return "/proc/self/root" + p, nil, nil }

// spellSupervisorRoot goes through ebpfjail's /proc/PID/root: a process
// outside the jail, whose mounts are the host's.
func spellSupervisorRoot(p string) (string, func(), error) {
	return "/proc/" + strconv.Itoa(os.Getppid()) + "/root" + p, nil, nil
}

func spellRelative(p string) (string, func(), error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", nil, err
	}
	if err := os.Chdir(filepath.Dir(p)); err != nil {
		return "", nil, err
	}
	return filepath.Base(p), func() { os.Chdir(wd) }, nil
}

func spellSymlink(p string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "unix-engine-symlink-")
	if err != nil {
		return "", nil, err
	}
	link := filepath.Join(dir, "engine.sock")
	if err := os.Symlink(p, link); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return link, func() { os.RemoveAll(dir) }, nil
}

func spellProcFD(p string) (string, func(), error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(fd), func() { unix.Close(fd) }, nil
}

// engineSpelling connects to the engine stand-in by spell and says what a
// Docker client would, tagged with name for the canary.
func engineSpelling(name string, spell spelling) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		if s.EngineStandIn == "" {
			return NotApplicable, "no stand-in engine socket"
		}
		addr, undo, err := spell(s.EngineStandIn)
		if undo != nil {
			defer undo()
		}
		if err != nil {
			return Blocked, "cannot spell the path: " + errText(err)
		}
		c, err := net.DialTimeout("unix", addr, opTimeout)
		if err != nil {
			return Blocked, addr + ": " + errText(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(opTimeout))
		io.WriteString(c, fmt.Sprintf("POST /%s/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n", name))
		return Leaked, "connected to " + addr
	}
}

// engineAttempt is the attempt named name that reaches the engine stand-in
// by spell.
func engineAttempt(name, what string, spell spelling) Attempt {
	return Attempt{Name: name, What: what, Run: engineSpelling(name, spell)}
}
