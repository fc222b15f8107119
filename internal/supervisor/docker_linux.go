package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"

	"github.com/ebpfjail/ebpfjail/internal/container"
	"github.com/ebpfjail/ebpfjail/internal/jail"
)

// startContainer runs the engine's client, outside the jail (it must reach
// the engine), with the container's processes started under the jail's
// cgroup: the cgroup programs steer every descendant. The client gets
// ebpfjail's own environment, with which it finds its engine as the user's
// shell would; the container gets the trust variables only. Without
// --network host the container joins the network namespace of a pause
// container, where ebpfjail listens before the container starts: it has
// loopback only, and every connection reaches ebpfjail there.
func startContainer(c Config, r *running, paths jail.Paths, fg bool) (*os.Process, error) {
	rel, err := filepath.Rel(paths.Cgroup2, r.j.Cgroup)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("jail cgroup %s is not under %s", r.j.Cgroup, paths.Cgroup2)
	}
	parent := "/" + rel
	id, err := r.startPause(c, parent)
	if err != nil {
		return nil, err
	}
	network := "host"
	if c.Docker.Network != "host" {
		network = "container:" + id
	}
	args := c.Docker.RunArgs(container.Jailed{
		CgroupParent: parent, TrustDir: c.trustDir(), TrustEnv: c.containerEnv, Network: network,
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

// startPause starts the pause container in the jail's cgroup, with no
// network but its own loopback, from the user's image and the pause
// program ebpfjail writes, checks that it runs here in the jail, and
// (without --network host) opens the proxy's and the DNS shim's listeners
// in its namespace. r.removePause undoes it.
func (r *running) startPause(c Config, parent string) (string, error) {
	// Beside the trust bundle, removed with it: a subdirectory, as
	// runtimes read every file of SSL_CERT_DIR as a certificate.
	dir := filepath.Join(c.trustDir(), "pause")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("start pause container: %w", err)
	}
	prog, err := container.WritePause(dir)
	if err != nil {
		return "", err
	}
	args := []string{"run", "-d", "--rm", "--network", "none", "--cgroup-parent", parent,
		"--entrypoint", container.PausePath, "-v", prog + ":" + container.PausePath + ":ro",
		"--label", "ebpfjail.jail=" + r.j.ID, c.Docker.Rest[0]}
	cmd := exec.Command(c.Engine.Path, args...)
	cmd.Env, cmd.Stderr = os.Environ(), c.Stderr // an image pull shows its progress
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("start pause container: %s %s: %w", c.Engine.Name, strings.Join(args, " "), err)
	}
	r.pause, r.engine = strings.TrimSpace(string(out)), c.Engine
	out, err = exec.Command(c.Engine.Path, "inspect", "-f", "{{.State.Pid}}", r.pause).Output()
	pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || perr != nil || pid <= 0 {
		return "", fmt.Errorf("find pause container's process: %q: %w", out, err)
	}
	// A remote engine, or one that ignores --cgroup-parent, would run the
	// container outside the jail: refuse unless the pause container's
	// process is here, in the jail.
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), "\n0::"+parent+"/") && !strings.HasPrefix(string(cg), "0::"+parent+"/") {
		return "", fmt.Errorf("the %s engine did not start the container on this host in the jail's cgroup %s (its process %d is in %q): a remote engine cannot be jailed", c.Engine.Name, parent, pid, strings.TrimSpace(string(cg)))
	}
	if c.Docker.Network == "host" {
		return r.pause, nil
	}
	ns, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return "", fmt.Errorf("open pause container's network namespace: %w", err)
	}
	defer ns.Close()
	if err := r.svc.proxy.ListenIn(ns); err != nil {
		return "", err
	}
	if err := r.svc.dns.ListenIn(ns); err != nil {
		return "", err
	}
	r.log.Debug("listening in the container's namespace", "pause", r.pause, "pid", pid)
	return r.pause, nil
}

// removePause removes the pause container, if any.
func (r *running) removePause() {
	if r.pause == "" {
		return
	}
	if out, err := exec.Command(r.engine.Path, "rm", "-f", r.pause).CombinedOutput(); err != nil {
		r.log.Debug("remove pause container (the kill may have removed it)", "id", r.pause, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// trustDir is the directory of the trust bundle (SSL_CERT_DIR).
func (c Config) trustDir() string {
	for _, kv := range c.containerEnv {
		if v, ok := strings.CutPrefix(kv, "SSL_CERT_DIR="); ok {
			return v
		}
	}
	return ""
}
