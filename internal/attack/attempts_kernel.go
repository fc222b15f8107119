//go:build linux

package attack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// inboundWait is how long the inbound attempt listens: the sender outside
// tries every inboundEvery.
const inboundWait = 1500 * time.Millisecond

// inbound listens on 0.0.0.0 and [::] (TCP and UDP) at the port the
// inbound sender, in a network namespace of its own joined to this host by
// a veth, keeps connecting and sending to. Whatever the listener accepts
// or receives came from outside the host: leaked. The sender records too,
// when a connection gets through.
func inbound(s Spec) (Status, string) {
	if s.Inbound == 0 {
		return NotApplicable, "no inbound sender (see the note below)"
	}
	var mu sync.Mutex
	var got []string
	note := func(what string) {
		mu.Lock()
		got = append(got, what)
		mu.Unlock()
	}
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, net.JoinHostPort(wildcard(network), strconv.Itoa(int(s.Inbound))))
		if err != nil {
			return Broken, "listen: " + errText(err)
		}
		closers = append(closers, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				note("tcp from " + c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String())
				c.Close()
			}
		}()
	}
	for _, network := range []string{"udp4", "udp6"} {
		pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(wildcardAddr(network), s.Inbound)))
		if err != nil {
			return Broken, "listen: " + errText(err)
		}
		closers = append(closers, pc)
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				note("udp from " + from.Addr().String())
			}
		}()
	}
	time.Sleep(inboundWait)
	mu.Lock()
	defer mu.Unlock()
	if len(got) > 0 {
		return Leaked, "a server on 0.0.0.0/[::] received " + strings.Join(dedupe(got), ", ")
	}
	return Blocked, fmt.Sprintf("a server on 0.0.0.0 and [::] port %d received nothing from %s in %v", s.Inbound, InboundSender, inboundWait)
}

func wildcardAddr(network string) netip.Addr {
	if strings.HasSuffix(network, "6") {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func wildcard(network string) string {
	if strings.HasSuffix(network, "6") {
		return "::"
	}
	return "0.0.0.0"
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// idleStep is the step that does nothing: what connect-then-exec becomes.
const idleStep = "idle"

// identityTries is how often each identity race runs: the old weakness
// (reading the process from /proc after accept) lost it one time in a few.
const identityTries = 10

// identityRace runs the step (connect-then-exit or connect-then-exec) as
// the program the rule denies, identityTries times. The step connects a
// socket this process made and passed down, sends a request to the allowed
// name, and exits or execs this (allowed) program at once; this process
// keeps the connection and judges the answer. Every request carries the
// attempt's name, so the HTTP canary tells if one got through.
func identityRace(step string) func(Spec) (Status, string) {
	return func(s Spec) (Status, string) {
		if s.BlockedExe == "" {
			return NotApplicable, "no denied program to run"
		}
		for i := range identityTries {
			st, d := identityOnce(s, step, i)
			if st != Blocked {
				return st, fmt.Sprintf("try %d: %s", i+1, d)
			}
		}
		return Blocked, fmt.Sprintf("%d tries: each got ebpfjail's 403 (the rule saw the denied program)", identityTries)
	}
}

func identityOnce(s Spec, step string, try int) (Status, string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Blocked, "socket: " + errText(err)
	}
	sock := os.NewFile(uintptr(fd), "race")
	defer sock.Close()
	cmd := exec.Command(s.BlockedExe, StepArg, step+"/"+strconv.Itoa(try), s.Encode())
	cmd.ExtraFiles = []*os.File{sock} // fd 3 in the step
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Broken, fmt.Sprintf("the step failed: %v %q", err, errb.String())
	}
	// The step says something only when it could not send its request.
	var o Outcome
	if json.Unmarshal([]byte(out.String()), &o) == nil {
		return o.Status, o.Detail
	}
	c, err := net.FileConn(sock)
	if err != nil {
		return Broken, "take the connection back: " + errText(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	return judgeResponse(bufio.NewReader(c))
}

// raceStep is the step's side: connect fd 3 to the target, send the
// request, then exit, or exec the attacker (a program the rule allows), at
// once.
func raceStep(s Spec, step string, try string) (Status, string) {
	if err := unix.Connect(3, sockaddr(netip.AddrPortFrom(s.V4, s.HTTP))); err != nil {
		return Blocked, "connect: " + errText(err)
	}
	if _, err := unix.Write(3, []byte(get(Decoy, "/"+step+"-"+try))); err != nil {
		return Blocked, "write: " + errText(err)
	}
	if step == "connect-then-exec" {
		err := unix.Exec(s.Attacker, []string{s.Attacker, StepArg, idleStep, s.Encode()}, os.Environ())
		return Broken, "exec: " + errText(err)
	}
	os.Exit(0)
	return Broken, "still running"
}
