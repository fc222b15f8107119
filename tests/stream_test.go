package tests

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// trickleStep and trickleBytes make the slow bodies: 40 bytes, one every
// 50 ms, each way.
const (
	trickleStep  = 50 * time.Millisecond
	trickleBytes = 40
)

// trickleHandler serves GET /down, a Content-Length body sent a byte at a
// time, each flushed, and POST /up, which answers with when (Unix
// nanoseconds) the first and the last byte of the request body arrived
// (PUT too, which curl -T uses).
func trickleHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		var first, last int64
		b := make([]byte, 1)
		for {
			n, err := r.Body.Read(b)
			if n > 0 {
				last = time.Now().UnixNano()
				if first == 0 {
					first = last
				}
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d %d", first, last)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(trickleBytes))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for range trickleBytes {
		time.Sleep(trickleStep)
		if _, err := w.Write([]byte{'x'}); err != nil {
			return
		}
		rc.Flush()
	}
}

// trickleOrigin serves trickleHandler over HTTP on 8090 and HTTPS on 8453
// (a certificate for allowed.test from ca) in h.
func trickleOrigin(t *testing.T, h *testutil.Host, ca *testutil.TestCA) {
	t.Helper()
	for _, ln := range []net.Listener{
		h.Listen(t, "tcp", "[::]:8090"),
		tls.NewListener(h.Listen(t, "tcp", "[::]:8453"), &tls.Config{
			Certificates: []tls.Certificate{ca.Leaf(t, "allowed.test")},
			NextProtos:   []string{"h2", "http/1.1"},
		}),
	} {
		srv := &http.Server{Handler: http.HandlerFunc(trickleHandler), ReadHeaderTimeout: 30 * time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Logf("trickle origin: %v", err)
			}
		}()
		t.Cleanup(func() {
			srv.Close()
			<-done
		})
	}
}

// trickleClient is the client of both directions (python3, HTTP/1.1, TLS
// for https; curl for HTTP/2, h2): it prints, in milliseconds after it sent the request head,
// when the first and the last body byte arrived (down) or when the origin
// saw them arrive (up).
const trickleClient = `import socket, ssl, sys, time
scheme, addr, host, port, way = sys.argv[1:6]
n, step = 40, 0.05
if scheme == "h2":
    import subprocess
    args = ["curl", "--http2", "-sSN", "https://%s:%s/%s" % (host, port, way)]
    if addr != host:
        args += ["--resolve", "%s:%s:%s" % (host, port, addr)]
    if way == "up":
        args += ["-T", "-"]
    t0 = time.time()
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if way == "up":
        for i in range(n):
            time.sleep(step)
            p.stdin.write(b"y")
            p.stdin.flush()
        p.stdin.close()
        first, last = [int(x) / 1e9 for x in p.stdout.read().split()]
    else:
        p.stdout.read(1)
        first = time.time()
        p.stdout.read()
        last = time.time()
    p.wait()
    print("%d %d" % ((first - t0) * 1000, (last - t0) * 1000))
    sys.exit(0)
s = socket.create_connection((addr, int(port)), timeout=30)
if scheme == "https":
    s = ssl.create_default_context().wrap_socket(s, server_hostname=host)
t0 = time.time()
if way == "down":
    s.sendall(b"GET /down HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
else:
    s.sendall(b"POST /up HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % (host.encode(), n))
    for i in range(n):
        time.sleep(step)
        s.sendall(b"y")
data, first, last = b"", None, None
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
    head, sep, body = data.partition(b"\r\n\r\n")
    if sep and way == "down" and body:
        last = time.time()
        first = first or last
if way == "up":
    head, _, body = data.partition(b"\r\n\r\n")
    first, last = [int(x) / 1e9 for x in body.split()]
print("%d %d" % ((first - t0) * 1000, (last - t0) * 1000))`

// pace runs trickleClient and returns when the first and last bytes came.
func pace(t *testing.T, r result, what string) (first, last time.Duration) {
	t.Helper()
	var f, l int64
	if _, err := fmt.Sscan(strings.TrimSpace(r.stdout), &f, &l); err != nil {
		t.Fatalf("%s: the client printed no timings: %v\n%s", what, err, r)
	}
	return time.Duration(f) * time.Millisecond, time.Duration(l) * time.Millisecond
}

func TestPrivilegedSlowBodiesStreamAtTheirOwnPaceBothWays(t *testing.T) {
	requireTool(t, "curl")
	s := newSite(t)
	trickleOrigin(t, s.h, s.ca)
	for _, scheme := range []string{"http", "https", "h2"} {
		port := map[string]string{"http": "8090", "https": "8453", "h2": "8453"}[scheme]
		for _, way := range []string{"down", "up"} {
			what := scheme + " " + way
			cmd := exec.Command(python(t), "-c", trickleClient, scheme, s.h.IPv4.String(), "allowed.test", port, way)
			cmd.Env = []string{"SSL_CERT_FILE=" + s.ca.PEMPath, "CURL_CA_BUNDLE=" + s.ca.PEMPath, "PATH=/usr/bin:/bin"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s direct: %v\n%s", what, err, out)
			}
			df, dl := pace(t, result{stdout: string(out)}, what+" direct")
			jf, jl := pace(t, s.run(t, allowRule, nil, python(t), "-c", trickleClient, scheme, "allowed.test", "allowed.test", port, way), what+" jailed")
			t.Logf("%s: first byte after %v direct, %v jailed; last after %v direct, %v jailed", what, df, jf, dl, jl)
			if jf > 2*df+time.Second || jl > 2*dl+time.Second {
				t.Errorf("%s: jailed first/last byte after %v/%v, want at most twice direct's (%v/%v) plus 1s", what, jf, jl, df, dl)
			}
		}
	}
	noJailsLeft(t)
}
