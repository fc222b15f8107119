//go:build linux

package attack

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestSpecRoundTrips(t *testing.T) {
	s := Spec{V4: netip.MustParseAddr("203.0.113.5"), V6: netip.MustParseAddr("2001:db8:eb::5"),
		HTTP: 80, HTTPS: 443, UDP: 9, QUIC: 443, DNS: 53, CAKey: "/k", Setuid: "/id"}
	got, err := DecodeSpec(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.V4 != s.V4 || got.V6 != s.V6 || got.HTTPS != 443 || got.Setuid != "/id" {
		t.Errorf("got %+v, want %+v", got, s)
	}
	for _, bad := range []string{"", "{}", `{"v4":"::1","v6":"::1","http":1,"https":1,"udp":1,"quic":1,"dns":53}`} {
		if _, err := DecodeSpec(bad); err == nil {
			t.Errorf("DecodeSpec(%q): got no error, want one", bad)
		}
	}
}

func TestAttributeNamesTheAttemptAndSparesOnlyTheControls(t *testing.T) {
	for _, tc := range []struct {
		hit  Hit
		want string
	}{
		{Hit{"http", "GET /control-http HTTP/1.1\r\nHost: " + Decoy + "\r\n\r\n"}, ""},
		{Hit{"https", "GET /control-https HTTP/1.1\r\nhost: " + Decoy + "\r\n\r\n"}, ""},
		// A control path with another Host is not a control.
		{Hit{"http", "GET /control-http HTTP/1.1\r\nHost: " + Forbidden + "\r\n\r\n"}, "control-http"},
		{Hit{"http", "GET /absolute-uri-tls HTTP/1.1\r\nHost: x\r\n\r\n"}, "absolute-uri-tls"},
		{Hit{"http", "CONNECT forbidden.attack.test:80 HTTP/1.1\r\nX-Attempt: connect-relay\r\n"}, "connect-relay"},
		{Hit{"dns", "dns-exfil.6562.0." + Forbidden + "."}, "dns-exfil"},
		{Hit{"udp", "\xc3\x00\x00\x00\x01"}, "?"},
	} {
		if got := Attribute(tc.hit); got != tc.want {
			t.Errorf("Attribute(%q): got %q, want %q", tc.hit.What, got, tc.want)
		}
	}
}

func TestListeningReadsProcNet(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0051 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 0500A8C0:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`
	table6 := `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A
`
	dir := t.TempDir()
	p4, p6 := filepath.Join(dir, "tcp"), filepath.Join(dir, "tcp6")
	os.WriteFile(p4, []byte(table), 0o644)
	os.WriteFile(p6, []byte(table6), 0o644)
	got := append(listening(p4, "0A"), listening(p6, "0A")...)
	want := []string{"127.0.0.1:80", "127.0.0.1:8080", "[::1]:53", "[::1]:22"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v (established and non-loopback ones left out)", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func TestAttemptsAreUniqueAndDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Attempts() {
		if seen[a.Name] {
			t.Errorf("attempt %q listed twice", a.Name)
		}
		seen[a.Name] = true
		if a.What == "" || a.Run == nil {
			t.Errorf("attempt %q has no description or no code", a.Name)
		}
	}
}
