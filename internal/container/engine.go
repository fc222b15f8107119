package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Engine is a container engine's command-line client. The client finds
// its engine itself (DOCKER_HOST, the current docker context, rootless
// and Podman sockets), so ebpfjail never names a socket.
type Engine struct {
	Name string // "docker" or "podman"
	Path string // the client's executable
}

// ErrNoEngine is the absence of both clients.
var ErrNoEngine = errors.New("no container engine client (docker or podman) on PATH")

// Find is the client named name, or with "" docker, else podman.
func Find(name string) (Engine, error) {
	names := []string{"docker", "podman"}
	if name != "" {
		names = []string{name}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return Engine{Name: n, Path: p}, nil
		}
	}
	if name != "" {
		return Engine{}, fmt.Errorf("find %s: not on PATH", name)
	}
	return Engine{}, ErrNoEngine
}

// Reachable is Find's client if it reaches its engine within timeout.
func Reachable(name string, timeout time.Duration) (Engine, string, error) {
	e, err := Find(name)
	if err != nil {
		return e, "", err
	}
	v, err := e.Version(timeout)
	return e, v, err
}

// Version asks the engine for its version: whether the client reaches it.
func (e Engine) Version(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.Path, "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return "", fmt.Errorf("reach %s engine: %s", e.Name, msg)
	}
	return strings.TrimSpace(string(out)), nil
}

// Jailed is how the container is jailed: the cgroup its processes start
// under (the path below the cgroup2 root, the engine's --cgroup-parent),
// the trust directory mounted read-only at the same path, and the
// variables that point its runtimes at the bundle there.
type Jailed struct {
	CgroupParent string
	TrustDir     string
	TrustEnv     []string
	Network      string // the network the container gets
}

// RunArgs are the client's arguments: `run`, ebpfjail's options, then the
// user's, then the image and its command.
func (a *Args) RunArgs(j Jailed) []string {
	// Without NET_RAW (which engines grant by default) no packet or XDP
	// socket: the cgroup programs see inet sockets only, and a command's
	// jail refuses the others with its seccomp filter.
	out := []string{"run", "--cgroup-parent", j.CgroupParent, "--network", j.Network, "--cap-drop", "NET_RAW"}
	if j.TrustDir != "" {
		out = append(out, "-v", j.TrustDir+":"+j.TrustDir+":ro")
	}
	for _, kv := range j.TrustEnv {
		out = append(out, "-e", kv)
	}
	out = append(out, a.Options...)
	out = append(out, "--")
	return append(out, a.Rest...)
}
