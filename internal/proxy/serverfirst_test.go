package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestSilentClientUnderTCPGetsTheServersGreetingAtOnce(t *testing.T) {
	origin := rawOrigin(t, func(c net.Conn) {
		io.WriteString(c, "220 greeting\r\n")
		io.Copy(c, c)
	})
	p := timeoutProxy(t, origin, true)
	before := runtime.NumGoroutine()
	c := dialProxy(t, p)
	start := time.Now()
	line, err := bufio.NewReader(c).ReadString('\n')
	if took := time.Since(start); err != nil || line != "220 greeting\r\n" || took > time.Second {
		t.Fatalf("a silent client: got %q, %v after %v, want the greeting within 1s", line, err, took)
	}
	io.WriteString(c, "QUIT\r\n")
	c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "QUIT\r\n" {
		t.Errorf("after the greeting: got %q, want the echo %q", got, "QUIT\r\n")
	}
	c.Close()
	goroutinesBackTo(t, p, before)
}

func TestLateHTTPClientUnderTCPIsStillServedPerRequest(t *testing.T) {
	origin, seen := httpOrigin(t)
	p := timeoutProxy(t, origin, true)
	before := runtime.NumGoroutine()
	c := dialProxy(t, p)
	time.Sleep(2 * serverFirstAfter)
	fmt.Fprintf(c, "GET /late HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello /late" || seen.Load() != 1 {
		t.Errorf("a late request: got %d %q (origin saw %d), want 200 %q, served as HTTP", resp.StatusCode, body, seen.Load(), "hello /late")
	}
	c.Close()
	goroutinesBackTo(t, p, before)
}

func TestSilentClientWithoutTCPIsResetPromptly(t *testing.T) {
	origin := rawOrigin(t, func(c net.Conn) { io.WriteString(c, "220 greeting\r\n") })
	p := timeoutProxy(t, origin, false)
	c := dialProxy(t, p)
	defer c.Close()
	start := time.Now()
	_, err := c.Read(make([]byte, 16))
	if took := time.Since(start); !errors.Is(err, syscall.ECONNRESET) || took > time.Second {
		t.Errorf("a silent client without --tcp: got %v after %v, want a reset (ECONNRESET) within 1s", err, took)
	}
}

// A silent client is refused at once only on a server-first protocol's
// port; elsewhere it may be a TLS or HTTP client slowed down (a loaded
// machine, a big CA bundle), and keeps the whole peek timeout.
func TestOnlyServerFirstPortsAreRefusedAtOnceWhenSilent(t *testing.T) {
	p := &Proxy{cfg: Config{PeekTimeout: 5 * time.Second}}
	for _, tc := range []struct {
		port int
		want time.Duration
	}{{22, silentRefuseAfter}, {25, silentRefuseAfter}, {3306, silentRefuseAfter}, {443, 5 * time.Second}, {8443, 5 * time.Second}, {9000, 5 * time.Second}} {
		if got := p.refuseSilentAfter(tc.port); got != tc.want {
			t.Errorf("port %d: got %v, want %v", tc.port, got, tc.want)
		}
	}
}
