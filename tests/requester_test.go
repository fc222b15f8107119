package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// requesterRule allows a request only from want and otherwise says what
// r.requester_ip was.
func requesterRule(want string) string {
	return fmt.Sprintf("r.requester_ip === %q || ({allow: false, deny_message: 'requester_ip=' + r.requester_ip})", want)
}

// r.requester_ip is the address the jailed client's connection would have
// come from without the redirect: toward the test host, the address of
// this side of its link, in each IP version; toward loopback, loopback.
func TestPrivilegedRequesterIPIsTheRoutesSourceTowardTheDestination(t *testing.T) {
	s := newSite(t)
	local := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from loopback\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go local.Serve(ln)
	t.Cleanup(func() { local.Close() })
	for _, tc := range []struct {
		url, from, body string
	}{
		{"http://" + s.h.IPv4.String() + "/", s.h.HostIPv4.String(), "hello from testhost"},
		{"http://[" + s.h.IPv6.String() + "]/", s.h.HostIPv6.String(), "hello from testhost"},
		{"http://" + ln.Addr().String() + "/", "127.0.0.1", "hello from loopback"},
	} {
		r := s.run(t, requesterRule(tc.from), nil, "curl", "-sS", tc.url)
		if !strings.Contains(r.stdout, tc.body) {
			t.Errorf("GET %s: got %q, want r.requester_ip %s (the route's source) and the origin's answer\n%s", tc.url, r.stdout, tc.from, r)
		}
	}
	noJailsLeft(t)
}

// In --server mode r.requester_ip is the client's own address.
func TestPrivilegedServerModeRequesterIPIsThePeer(t *testing.T) {
	s := newSite(t)
	addr := server(t, nil, "--listen", net.JoinHostPort(s.h.HostIPv4.String(), "0"), "--js", requesterRule(s.h.IPv4.String()),
		"--resolve", "allowed.test:"+s.h.IPv4.String())
	c, err := s.h.Dial("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Errorf("a client at %s through --server: got %d %q, want 200 (r.requester_ip the client's address)", s.h.IPv4, res.StatusCode, body)
	}
}
