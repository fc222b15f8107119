package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

func TestExplicitProxyServesAbsoluteFormAndCONNECTAndRefusesLoops(t *testing.T) {
	origin, seen := httpOrigin(t)
	var (
		mu     sync.Mutex
		events []event.Event
	)
	p, err := Listen(Config{
		Logger: testutil.DiscardLogger(), Explicit: "127.0.0.1:0", PeekTimeout: time.Second,
		Rules: ruleFunc(func(r *rules.Request) rules.Verdict { return rules.Verdict{Allow: r.Path != "/denied"} }),
		Events: func(e event.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ask := func(raw string) (int, string) {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		br := bufio.NewReader(c)
		if raw[:7] == "CONNECT" {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("CONNECT: %v %v", resp, err)
			}
			fmt.Fprintf(c, "GET /inner HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ask(fmt.Sprintf("GET http://%s/a HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin, origin)); code != 200 || body != "hello /a" {
		t.Errorf("absolute-form: got %d %q", code, body)
	}
	if code, _ := ask(fmt.Sprintf("GET http://%s/denied HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)); code != 403 {
		t.Errorf("denied: got %d, want 403", code)
	}
	if code, body := ask(fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)); code != 200 || body != "hello /inner" {
		t.Errorf("CONNECT tunnel: got %d %q", code, body)
	}
	self := p.Addr().String()
	if code, body := ask(fmt.Sprintf("GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", self, self)); code != 403 {
		t.Errorf("loop: got %d %q, want 403", code, body)
	}
	if seen.Load() != 2 {
		t.Errorf("origin saw %d requests, want 2", seen.Load())
	}
	// An allowed request's event follows its response: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 4 {
		t.Errorf("events: got %d, want 4: %+v", len(events), events)
	}
}
