//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"strconv"
	"syscall"

	"github.com/ebpfjail/ebpfjail/internal/attack"
)

// startVictim starts the attacker binary as an unjailed process of user:
// the isolation attempts aim at it from inside the jail. The returned
// function ends it.
func startVictim(attacker, user string, spec attack.Spec) (*attack.Victim, func(), error) {
	u, err := osuser.Lookup(user)
	if err != nil {
		return nil, nil, fmt.Errorf("start victim: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("start victim: user %s has uid %q gid %q", user, u.Uid, u.Gid)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	cmd := exec.Command(attacker, attack.VictimArg, spec.Encode())
	cmd.Env = []string{attack.VictimSecretVar + "=" + hex.EncodeToString(secret)}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("start victim: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("start victim: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start victim: %w", err)
	}
	stop := func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}
	var v attack.Victim
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &v)
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("start victim: read its report: %w", err)
	}
	return &v, stop, nil
}

// abstractCanaryName is a name no one else binds.
func abstractCanaryName() string {
	return "@ebpfjail-attack-" + strconv.Itoa(os.Getpid())
}
