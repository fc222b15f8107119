package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startGoproxy builds and starts the goproxy peer (tests/bench/peers, a
// module of its own) on a loopback port; it is stopped by its PID when the
// test ends.
func startGoproxy(t *testing.T, dir string, e *env) *peerSide {
	s := &peerSide{name: "goproxy"}
	bin := filepath.Join(dir, "goproxy")
	build := exec.Command("go", "build", "-o", bin, "./goproxy")
	build.Dir = "peers"
	if out, err := build.CombinedOutput(); err != nil {
		t.Logf("goproxy: go build: %v\n%s", err, out)
		s.why = "n/a (go build failed)"
		return s
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-ca-cert", filepath.Join(dir, "peer-ca.pem"),
		"-ca-key", filepath.Join(dir, "peer-ca.key"), "-resolve", benchHost+"="+e.ip)
	// Upstream TLS is verified against the origin's CA.
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.caPEM)
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		s.why = "n/a (start failed)"
		t.Logf("goproxy: %v", err)
		return s
	}
	t.Cleanup(func() { stopByPID(cmd) })
	addr, err := waitLine(bufio.NewScanner(stdout), 30*time.Second)
	if err != nil {
		s.why = "n/a (did not start)"
		t.Logf("goproxy: %v", err)
		return s
	}
	s.proxy, s.pid = "http://"+addr, cmd.Process.Pid
	return s
}

// squidConf is squid's configuration for the benchmark: ssl-bump every
// CONNECT with the peer CA, verify upstream against the origin's CA,
// cache nothing, log nothing per request, and resolve the origin's name
// from a hosts file of its own.
const squidConf = `http_port 127.0.0.1:{port} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert={dir}/peer-ca.pem tls-key={dir}/peer-ca.key
sslcrtd_program /usr/lib/squid/security_file_certgen -s {dir}/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
ssl_bump bump all
tls_outgoing_options cafile={originCA}
http_access allow all
cache deny all
hosts_file {dir}/hosts
pid_filename {dir}/squid.pid
access_log none
cache_log {dir}/cache.log
coredump_dir {dir}
cache_effective_user proxy
max_filedescriptors 16384
shutdown_lifetime 1 seconds
via off
forwarded_for delete
`

// startSquid starts Debian's squid (squid-openssl) with ssl-bump on a
// loopback port, as root (it drops to the proxy user itself), in the
// foreground (-N: one process, the one whose CPU and RSS are read); it is
// stopped by its PID when the test ends.
func startSquid(t *testing.T, dir string, e *env) *peerSide {
	s := &peerSide{name: "squid"}
	squid, err := exec.LookPath("squid")
	if err != nil {
		squid = "/usr/sbin/squid"
	}
	if v, err := exec.Command(squid, "-v").CombinedOutput(); err != nil || !strings.Contains(string(v), "--with-openssl") {
		t.Logf("squid: %v %s", err, firstLine(string(v)))
		s.why = "n/a (no squid-openssl: apt-get install squid-openssl)"
		return s
	}
	port, err := freePort()
	if err != nil {
		s.why = "n/a (no free port)"
		return s
	}
	sdir := filepath.Join(dir, "squid")
	if err := setUpSquidDir(sdir, dir, e, port); err != nil {
		t.Logf("squid: %v", err)
		s.why = "n/a (set-up failed)"
		return s
	}
	cmd := exec.Command(squid, "-N", "-f", filepath.Join(sdir, "squid.conf"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.why = "n/a (start failed)"
		return s
	}
	t.Cleanup(func() { stopByPID(cmd) })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitListening(addr, 30*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(sdir, "cache.log"))
		t.Logf("squid: %v\n%s\n%s", err, out.String(), lastLines(string(log), 10))
		s.why = "n/a (did not start)"
		return s
	}
	s.proxy, s.pid = "http://"+addr, cmd.Process.Pid
	return s
}

// setUpSquidDir writes squid's configuration, hosts file and certificate
// database into sdir, owned by the proxy user.
func setUpSquidDir(sdir, dir string, e *env, port int) error {
	if err := os.Mkdir(sdir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"peer-ca.pem", "peer-ca.key"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(sdir, f), b, 0o600); err != nil {
			return err
		}
	}
	conf := strings.NewReplacer("{port}", strconv.Itoa(port), "{dir}", sdir, "{originCA}", e.caPEM).Replace(squidConf)
	if err := os.WriteFile(filepath.Join(sdir, "squid.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sdir, "hosts"), []byte(e.ip+" "+benchHost+"\n"), 0o644); err != nil {
		return err
	}
	db := filepath.Join(sdir, "ssl_db")
	if out, err := exec.Command("/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "16MB").CombinedOutput(); err != nil {
		return fmt.Errorf("security_file_certgen -c: %v\n%s", err, out)
	}
	u, err := user.Lookup("proxy")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(sdir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// stopByPID ends a peer this test started: SIGTERM, then SIGKILL after
// 10 s.
func stopByPID(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
