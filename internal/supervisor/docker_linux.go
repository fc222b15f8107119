package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/jail"
)

// startContainer runs the engine's client, outside the jail (it must reach
// the engine), with the container's processes started under the jail's
// cgroup: the cgroup programs steer every descendant. The client gets
// ebpfjail's own environment, with which it finds its engine as the user's
// shell would; the container gets the trust variables only.
func startContainer(c Config, r *running, paths jail.Paths, fg bool) (*os.Process, error) {
	rel, err := filepath.Rel(paths.Cgroup2, r.j.Cgroup)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("jail cgroup %s is not under %s", r.j.Cgroup, paths.Cgroup2)
	}
	var trustDir string
	for _, kv := range c.trustEnv {
		if v, ok := strings.CutPrefix(kv, "SSL_CERT_DIR="); ok {
			trustDir = v
		}
	}
	args := c.Docker.RunArgs(container.Jailed{
		CgroupParent: "/" + rel, TrustDir: trustDir, TrustEnv: c.trustEnv, Network: "host",
	})
	cmd := exec.Command(c.Engine.Path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: fg}
	r.log.Debug("starting container", "engine", c.Engine.Path, "args", args)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Engine.Name, err)
	}
	return cmd.Process, nil
}
