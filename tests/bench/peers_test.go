package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peerModes are how much the peers benchmark measures: "peers" (make
// bench-peers) or "peers-quick" (a check that every cell can be filled).
var peerModes = map[string]mode{
	"peers":       {name: "peers", rounds: 5, dur: 2 * time.Second, bigBytes: 64 << 20, hold: 1000},
	"peers-quick": {name: "peers-quick", rounds: 1, dur: 300 * time.Millisecond, bigBytes: 8 << 20, hold: 200},
}

// peerSide is one way of sending the load: direct, through ebpfjail (with
// extra flags), or through an explicit proxy (a peer) at proxy whose
// process is pid.
type peerSide struct {
	name  string
	jail  []string // ebpfjail's extra flags; nil: not jailed
	proxy string   // http://127.0.0.1:PORT
	pid   int
	why   string // "n/a (...)": the peer could not be started
	tls   bool   // only the HTTPS rows (ebpfjail --no-mitm)
}

// peerExp is one row of the peers table and the load that measures it.
type peerExp struct {
	row   string
	https bool
	args  []string
}

func peerExps(m mode) []peerExp {
	https, http := "https://"+benchHost+"/", "http://"+benchHost+"/"
	d := m.dur.String()
	rate := func(row string, isTLS bool, u, c string, newConn bool) peerExp {
		a := []string{"rate", "-c", c, "-d", d, "-url", u}
		if newConn {
			a = append(a, "-new")
		}
		return peerExp{row, isTLS, a}
	}
	big := func(row string, isTLS bool, u string) peerExp {
		return peerExp{row, isTLS, []string{"get", "-url", fmt.Sprintf("%sbytes?n=%d", u, m.bigBytes)}}
	}
	mib := fmt.Sprintf("%d MiB", m.bigBytes>>20)
	return []peerExp{
		rate("HTTPS new conn c=1", true, https, "1", true),
		rate("HTTPS new conn c=32", true, https, "32", true),
		rate("HTTPS keep-alive c=1", true, https, "1", false),
		rate("HTTPS keep-alive c=32", true, https, "32", false),
		big("HTTPS "+mib, true, https),
		rate("HTTP new conn c=1", false, http, "1", true),
		rate("HTTP keep-alive c=1", false, http, "1", false),
		rate("HTTP keep-alive c=32", false, http, "32", false),
		big("HTTP "+mib, false, http),
	}
}

// TestPeers is `make bench-peers`: the load of the side-by-side benchmark
// through squid (ssl-bump), goproxy (MITM), ebpfjail and ebpfjail
// --no-mitm, interleaved with direct, as one table of ratios to direct.
// A peer that cannot be started is shown as "n/a (why)".
func TestPeers(t *testing.T) {
	m, ok := peerModes[os.Getenv("EBPFJAIL_BENCH")]
	if !ok {
		t.Skip("set EBPFJAIL_BENCH=peers (make bench-peers) or peers-quick")
	}
	e, _ := newEnv(t, 5*time.Minute)
	dir := peerDir(t)
	bundle := filepath.Join(dir, "bundle.pem")
	writePeerCA(t, dir, e.caPEM, bundle)
	sides := []*peerSide{
		{name: "direct"},
		startSquid(t, dir, e),
		startGoproxy(t, dir, e),
		{name: "ebpfjail", jail: []string{}},
		{name: "ebpfjail --no-mitm", jail: []string{"--no-mitm", benchHost}, tls: true},
	}
	exps := peerExps(m)
	cells := map[string]map[string]*peerCell{}
	fmt.Printf("peers benchmark (%s): %d rounds, %s per rate, origin %s; load average %s\n", m.name, m.rounds, m.dur, e.ip, loadAvg())
	for round := 1; round <= m.rounds; round++ {
		for i, x := range exps {
			e.peerRound(m, round, i, x, sides, bundle, cells)
		}
	}
	rssRow := fmt.Sprintf("peak RSS MiB, %d conns", m.hold)
	cells[rssRow] = map[string]*peerCell{}
	for _, s := range sides[1:] {
		cells[rssRow][s.name] = e.peerRSS(s, bundle, m.hold)
	}
	names := []string{}
	for _, x := range exps {
		names = append(names, x.row)
		if strings.HasSuffix(x.row, "keep-alive c=32") {
			names = append(names, "  proxy CPU µs/req ("+strings.TrimSuffix(x.row, " c=32")+")")
		}
	}
	var cols []string
	for _, s := range sides[1:] {
		cols = append(cols, s.name)
	}
	fmt.Printf("\n%s\n", peersTable(append(names, rssRow), cols, cells))
}

// peerRound runs experiment x once on every side, starting at a different
// side each round so no side always goes first.
func (e *env) peerRound(m mode, round, i int, x peerExp, sides []*peerSide, bundle string, cells map[string]map[string]*peerCell) {
	if cells[x.row] == nil {
		cells[x.row] = map[string]*peerCell{}
	}
	var direct float64
	results := map[string]float64{}
	for k := range sides {
		s := sides[(k+round+i)%len(sides)]
		if s.tls && !x.https {
			continue
		}
		c := cells[x.row][s.name]
		if c == nil {
			c = &peerCell{why: s.why}
			cells[x.row][s.name] = c
		}
		if c.why != "" && s.name != "direct" {
			continue
		}
		res, err := e.peerRun(s, bundle, x.args)
		if err != nil {
			c.why = "n/a (failed)"
			e.t.Logf("%s via %s: %v", x.row, s.name, err)
			continue
		}
		v := scaled(x.args[0], res.PerSec)
		results[s.name] = v
		if s.name == "direct" {
			direct = v
		} else if strings.HasSuffix(x.row, "keep-alive c=32") {
			// What the proxy process itself spends, from /proc.
			cpuRow := "  proxy CPU µs/req (" + strings.TrimSuffix(x.row, " c=32") + ")"
			if cells[cpuRow] == nil {
				cells[cpuRow] = map[string]*peerCell{}
			}
			if cells[cpuRow][s.name] == nil {
				cells[cpuRow][s.name] = &peerCell{}
			}
			cells[cpuRow][s.name].samples = append(cells[cpuRow][s.name].samples, res.proxyCPU)
		}
	}
	line := fmt.Sprintf("round %d/%d  %-22s", round, m.rounds, x.row)
	for _, s := range sides {
		v, ok := results[s.name]
		if !ok || s.name == "direct" {
			continue
		}
		c := cells[x.row][s.name]
		c.samples = append(c.samples, v)
		c.direct = append(c.direct, direct)
		line += fmt.Sprintf("  %s %.2f", s.name, v/direct)
	}
	fmt.Printf("%s  (direct %.1f %s)\n", line, direct, unitOf(x.args[0]))
}

// peerRun runs the loadclient arguments args on side s.
func (e *env) peerRun(s *peerSide, bundle string, args []string) (clientResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	argv := append([]string{e.client}, args...)
	argv = append(argv, "-sync", "-connect", e.ip+":"+portOf(args))
	if s.proxy == "" {
		pid := -1 // ebpfjail, the command itself
		if s.jail == nil {
			pid = 0
		}
		return runLoad(e.command(ctx, s.jail == nil, s.jail, argv...), pid)
	}
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "-proxy", s.proxy)...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+bundle)
	return runLoad(cmd, s.pid)
}

// peerRSS holds n connections through side s and reads the peak resident
// set of its proxy process.
func (e *env) peerRSS(s *peerSide, bundle string, n int) *peerCell {
	if s.why != "" {
		return &peerCell{why: s.why}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	argv := []string{e.client, "hold", "-n", strconv.Itoa(n), "-url", "https://" + benchHost + "/", "-connect", e.ip + ":443"}
	cmd, pid := e.command(ctx, false, s.jail, argv...), -1
	if s.proxy != "" {
		cmd = exec.CommandContext(ctx, argv[0], append(argv[1:], "-proxy", s.proxy)...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+bundle)
		pid = s.pid
	}
	hwm, _, err := holdRSS(cmd, n, pid)
	if err != nil {
		e.t.Logf("RSS via %s: %v", s.name, err)
		return &peerCell{why: "n/a (failed)"}
	}
	fmt.Printf("%s with %d connections open: VmHWM %.1f MiB\n", s.name, n, hwm)
	return &peerCell{samples: []float64{hwm}}
}

// peerDir is a directory for the peers' files, readable by squid's user.
func peerDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ebpfjail-peers-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

// writePeerCA makes the CA the peers sign their MITM certificates with
// (dir/peer-ca.pem, dir/peer-ca.key) and a bundle of it and the origin's
// CA for the clients they serve.
func writePeerCA(t *testing.T, dir, originCA, bundle string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ebpfjail bench peer CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	origin, err := os.ReadFile(originCA)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"peer-ca.pem": certPEM,
		"peer-ca.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		bundle:        append(append([]byte{}, origin...), certPEM...),
	} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	var a, b1, c string
	fmt.Sscan(string(b), &a, &b1, &c)
	return a + " " + b1 + " " + c
}

// waitLine reads the first line sc gives within d.
func waitLine(sc *bufio.Scanner, d time.Duration) (string, error) {
	got := make(chan string, 1)
	go func() {
		if sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	select {
	case l, ok := <-got:
		if !ok {
			return "", fmt.Errorf("no output")
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("no output within %s", d)
	}
}
