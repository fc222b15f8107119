//go:build linux

package attack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/control"
)

// controlWait bounds how long the attempt waits for the driver to name
// the control socket, and the driver for the socket to appear.
const controlWait = 10 * time.Second

// controlSocket connects to the jail's own control socket, which would
// let the jail watch itself (and, later, answer for itself), by its path
// and other spellings. The client side says whether a connect succeeded;
// the driver judges from the server's side (followControl).
func controlSocket(s Spec) (Status, string) {
	if s.Control == "" {
		return NotApplicable, "no control socket"
	}
	var target string
	for deadline := time.Now().Add(controlWait); target == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		target, _ = os.Readlink(s.Control)
	}
	if target == "" {
		return Broken, "the driver never named the control socket"
	}
	spellings := []string{target, "/" + target, filepath.Dir(target) + "/./" + filepath.Base(target),
		"/proc/self/root" + target, s.Control}
	var refused []string
	for _, addr := range spellings {
		c, err := net.DialTimeout("unix", addr, opTimeout)
		if err != nil {
			refused = append(refused, addr+": "+errText(err))
			continue
		}
		c.SetDeadline(time.Now().Add(opTimeout))
		io.WriteString(c, `{"v":1,"op":"status"}`+"\n")
		c.Close()
		return Leaked, "connected to " + addr
	}
	return Blocked, strings.Join(refused, "; ")
}

// followControl finds the control socket of the jail whose supervisor is
// pid, names it to the attempt by a symlink at link, and follows it to
// its end; it returns the server's count of refused peers, or an error
// when it could not tell.
func followControl(ctx context.Context, stateDir string, pid int, link string) (int64, error) {
	var sock string
	for deadline := time.Now().Add(controlWait); sock == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, errors.New("the jail's control socket never appeared")
		}
		m, _ := filepath.Glob(filepath.Join(stateDir, fmt.Sprintf("%d-*%s", pid, control.SocketSuffix)))
		if len(m) == 1 {
			sock = m[0]
		}
	}
	c, err := control.Dial(ctx, sock, control.OpSubscribe)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	context.AfterFunc(ctx, func() { c.Close() })
	if err := os.Symlink(sock, link); err != nil {
		return 0, err
	}
	for {
		m, err := c.Next()
		if err != nil {
			return 0, fmt.Errorf("follow the control socket: %w", err)
		}
		if m.End != nil {
			return m.End.Status.Peers.Refused, nil
		}
	}
}
