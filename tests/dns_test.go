package tests

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// resolvers are the stub resolvers of four runtimes, each printing the
// addresses it got for its argument.
func resolvers(t *testing.T) map[string][]string {
	gc := goClient(t)
	return map[string][]string{
		"glibc":  {"getent", "ahosts"},
		"go":     {gc, "resolve"},
		"node":   {"node", "-e", `require("dns").lookup(process.argv[1], {all: true}, (e, a) => { if (e) { console.log("error", e.code); process.exit(1) } console.log("resolved", a.map(x => x.address).join(" ")) })`},
		"python": {python(t), "-c", `import socket, sys; print("resolved", " ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80)})))`},
	}
}

func TestPrivilegedFakeDNSKeepsNamesAndLeaksNothing(t *testing.T) {
	s := newSite(t)
	t.Run("dig-gets-a-synthetic-address", func(t *testing.T) {
		requireTool(t, "dig")
		r := s.run(t, allowRule, nil, "dig", "+short", "allowed.test", "A")
		a, err := netip.ParseAddr(strings.TrimSpace(r.stdout))
		if err != nil || !netip.MustParsePrefix("198.18.0.0/15").Contains(a) {
			t.Errorf("dig: got %q, want an address in 198.18.0.0/15\n%s", r.stdout, r)
		}
	})
	t.Run("https-by-name", func(t *testing.T) {
		r := s.run(t, allowRule, nil, "curl", "-sS", "-w", "\nstatus %{http_code}\n", "https://allowed.test/")
		contains(t, "allowed", r.stdout, "status 200")
	})
	t.Run("no-exfiltration", func(t *testing.T) {
		requireTool(t, "dig")
		for _, proto := range []string{"+notcp", "+tcp"} {
			s.run(t, allowRule, nil, "dig", "@"+s.h.IPv4.String(), "-p", "53", proto, "+tries=1", "+time=3", "secret.exfil.test")
			s.run(t, allowRule, nil, "dig", "@"+s.h.IPv6.String(), proto, "+tries=1", "+time=3", "secret.exfil.test")
		}
		for _, q := range s.dns.Queries() {
			t.Errorf("the test's DNS server received %v", q)
		}
	})
	t.Run("every-resolver", func(t *testing.T) {
		for name, argv := range resolvers(t) {
			if name == "node" {
				requireTool(t, "node")
			}
			r := s.run(t, allowRule, nil, append(argv, "allowed.test")...)
			if r.code != 0 || !strings.Contains(r.stdout, "198.1") {
				t.Errorf("%s: got %s, want a synthetic address", name, r)
			}
		}
	})
	noJailsLeft(t)
}

func TestPrivilegedForwardDNSAsksTheRule(t *testing.T) {
	s := newSite(t)
	fwd := []string{"--dns", "forward", "--dns-upstream", s.h.IPv4.String()}
	t.Run("allowed-and-denied", func(t *testing.T) {
		requireTool(t, "dig")
		r := s.run(t, allowRule, fwd, "sh", "-c", "dig +short allowed.test A; dig secret.exfil.test A | grep -o 'status: [A-Z]*'")
		contains(t, "allowed answer", r.stdout, s.h.IPv4.String())
		contains(t, "denied answer", r.stdout, "status: NXDOMAIN")
		for _, q := range s.dns.Queries() {
			if strings.Contains(q.Name, "exfil") {
				t.Errorf("the recorder saw a denied name: %v", q)
			}
		}
	})
	t.Run("every-resolver", func(t *testing.T) {
		for name, argv := range resolvers(t) {
			if name == "node" {
				requireTool(t, "node")
			}
			r := s.run(t, allowRule, fwd, append(argv, "allowed.test")...)
			if r.code != 0 || !strings.Contains(r.stdout, s.h.IPv4.String()) {
				t.Errorf("%s: got %s, want %s", name, r, s.h.IPv4)
			}
		}
	})
	noJailsLeft(t)
}

func TestPrivilegedTCPFlagLetsTheRuleDecideNonHTTP(t *testing.T) {
	requireTool(t, "nc")
	s := newSite(t)
	ln := s.h.Listen(t, "tcp", "[::]:22")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-ebpfjail-test-banner\r\n"))
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 64))
			c.Close()
		}
	}()
	rule := "r.host === 'ssh.test' && r.port === 22"
	pin := []string{"--resolve", "ssh.test:" + s.h.IPv4.String(), "--resolve", "other.test:" + s.h.IPv4.String()}
	nc := func(host string) []string {
		return []string{"sh", "-c", "echo hello | timeout 15 nc -q 2 " + host + " 22"}
	}
	r := s.run(t, rule, append([]string{"--tcp"}, pin...), nc("ssh.test")...)
	contains(t, "allowed banner", r.stdout, "SSH-2.0-ebpfjail-test-banner")
	contains(t, "rule saw tcp", r.stderr, "allowed CONNECT tcp://ssh.test:22")
	for _, tc := range []struct {
		name  string
		extra []string
		host  string
	}{
		{"without --tcp", pin, "ssh.test"},
		{"other host", append([]string{"--tcp"}, pin...), "other.test"},
	} {
		r := s.run(t, rule, tc.extra, nc(tc.host)...)
		if strings.Contains(r.stdout, "SSH-2.0") {
			t.Errorf("%s: the banner came through:\n%s", tc.name, r)
		}
	}
	noJailsLeft(t)
}
