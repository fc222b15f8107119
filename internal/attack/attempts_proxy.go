//go:build linux

package attack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The proxy attempts: bytes past max_tx_bytes through an upgraded
// connection, an allowed name that resolves to this host itself, and a
// CONNECT inside intercepted TLS to a port the rule refuses.
const (
	// LocalName is allowed by the rule and resolves (through the jail
	// run's private /etc/hosts) to the loopback canary.
	LocalName = "local.attack.test"
	// UpgradePath is the one path the rule limits to UpgradeLimit bytes.
	UpgradePath  = "/upgrade-head"
	UpgradeLimit = 1000
	// TunnelPort is the one port of Decoy the rule refuses.
	TunnelPort = 9
)

// upgradePastMaxTx asks to switch protocols on the one request the rule
// limits, then sends far more than the limit through the connection.
func upgradePastMaxTx(s Spec) (Status, string) {
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, errText(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	head := "GET " + UpgradePath + " HTTP/1.1\r\nHost: " + Decoy + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		return Blocked, "write: " + errText(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return judge(resp, err)
	}
	chunk := []byte(strings.Repeat("upgrade-past-max-tx ", 1600)) // 32 KB
	sent := 0
	for sent < 1<<20 {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			return Blocked, fmt.Sprintf("the upgraded connection was cut after %d bytes (%s)", sent, errText(err))
		}
	}
	// The socket buffers may take it all before the cut arrives: the cut
	// shows as the end of the connection, where a tunnel stays open.
	var one [1]byte
	if _, err := c.Read(one[:]); err != nil && !isTimeout(err) {
		return Blocked, fmt.Sprintf("%d bytes written, then the upgraded connection was cut (%s)", sent, errText(err))
	}
	return Leaked, fmt.Sprintf("%d bytes went into the upgraded connection, limit %d, and it stayed open", sent, UpgradeLimit)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// localName asks for the allowed LocalName, which ebpfjail resolves to the
// loopback canary.
func localName(s Spec) (Status, string) {
	c, err := toTarget(s, "")
	if err != nil {
		return Blocked, errText(err)
	}
	return exchange(c, get(LocalName+":"+strconv.Itoa(int(s.HTTP)), "/local-name"))
}

// connectPortTLS asks the allowed host, inside TLS to it, for a tunnel to
// the port the rule refuses, and a request through it: forwarded, the
// CONNECT reaches the HTTPS canary.
func connectPortTLS(s Spec) (Status, string) {
	c, err := toTarget(s, Decoy)
	if err != nil {
		return Blocked, errText(err)
	}
	to := Decoy + ":" + strconv.Itoa(TunnelPort)
	return tunnelThrough(c, to, to, "connect-port-tls", get(to, "/connect-port-tls"))
}

// tunnelThrough sends CONNECT to (with Host host and the attempt's name)
// on c and, right behind it, inner, the request meant for the tunnel, and
// judges what comes back: ebpfjail may refuse the CONNECT, or answer it
// itself and decide the request inside.
func tunnelThrough(c net.Conn, to, host, name, inner string) (Status, string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	req := "CONNECT " + to + " HTTP/1.1\r\nHost: " + host + "\r\nX-Attempt: " + name + "\r\n\r\n"
	if _, err := io.WriteString(c, req+inner); err != nil {
		return Blocked, "write: " + errText(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		return judge(resp, err)
	}
	st, d := judgeResponse(br)
	return st, "CONNECT answered 200; the request inside the tunnel: " + d
}

// upgrading answers an upgrade request with 101 and records, as the
// upgrade-past-max-tx attempt, any bytes past UpgradeLimit that come
// through the switched connection; other requests go to next.
func (c *Canaries) upgrading(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		conn.SetDeadline(time.Now().Add(2 * opTimeout))
		if n, _ := io.Copy(io.Discard, brw); n > UpgradeLimit {
			c.record(name, fmt.Sprintf("upgrade-past-max-tx: %d bytes after the upgrade, limit %d", n, UpgradeLimit))
		}
	})
}

// HostsArg is the hidden first argument that runs the rest of the command
// line with a private /etc/hosts (ExecWithHosts).
const HostsArg = "__attack-hosts"

// Hosts is the /etc/hosts of the jail run: the machine's, and LocalName at
// the loopback canary (ebpfjail resolves it through the system resolver,
// as it would a name a hostile DNS server answered).
func Hosts() ([]byte, error) {
	b, err := os.ReadFile("/etc/hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read /etc/hosts: %w", err)
	}
	return append(b, []byte("\n"+CanaryV4.String()+" "+LocalName+"\n")...), nil
}

// ExecWithHosts bind-mounts hosts over /etc/hosts and executes argv in its
// place. The caller started it in a mount namespace of its own (mounts
// made private), which it checks first: in the machine's namespace the
// mount would change /etc/hosts for everyone.
func ExecWithHosts(hosts string, argv []string) error {
	own, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err1 != nil || err2 != nil || own == parent {
		return errors.New("run with a private /etc/hosts: not in a mount namespace of its own")
	}
	if err := syscall.Mount(hosts, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s over /etc/hosts: %w", hosts, err)
	}
	if err := syscall.Exec("/proc/self/exe", argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return nil
}
