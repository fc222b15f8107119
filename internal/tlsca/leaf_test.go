package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifyLeaf verifies leaf for name against a pool holding only ca, as a
// jailed client given the bundle would (name may be an IP literal).
func verifyLeaf(tb testing.TB, ca *CA, leaf *x509.Certificate, name string) {
	tb.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	if _, err := leaf.Verify(x509.VerifyOptions{
		DNSName:   name,
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		tb.Errorf("verify leaf for %q: %v", name, err)
	}
}

func TestLeafVerifies(t *testing.T) {
	ca, _ := newTestCA(t)
	for _, c := range []struct {
		host, verifyAs string
		ip             bool
	}{
		{"example.test", "example.test", false},
		{"API.Example.TEST.", "api.example.test", false},
		{"under_score.example.test", "under_score.example.test", false},
		{"203.0.113.7", "203.0.113.7", true},
		{"2001:db8:eb::7", "2001:db8:eb::7", true},
		{"[2001:db8:eb::8]", "2001:db8:eb::8", true},
		{"::ffff:203.0.113.9", "203.0.113.9", true},
		{"fe80::1%eth0", "fe80::1", true},
	} {
		t.Run(c.host, func(t *testing.T) {
			before := time.Now()
			cert, err := ca.Leaf(c.host)
			if err != nil {
				t.Fatalf("Leaf(%q): %v", c.host, err)
			}
			leaf := cert.Leaf
			verifyLeaf(t, ca, leaf, c.verifyAs)

			if c.ip {
				if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 0 {
					t.Errorf("SANs: IPs %v, DNS %v; want one IP SAN only", leaf.IPAddresses, leaf.DNSNames)
				} else if want := net.ParseIP(c.verifyAs); !leaf.IPAddresses[0].Equal(want) {
					t.Errorf("IP SAN %v, want %v", leaf.IPAddresses[0], want)
				}
			} else if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != c.verifyAs || len(leaf.IPAddresses) != 0 {
				t.Errorf("SANs: DNS %v, IPs %v; want DNS [%s] only", leaf.DNSNames, leaf.IPAddresses, c.verifyAs)
			}
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("ExtKeyUsage %v, want [ServerAuth]", leaf.ExtKeyUsage)
			}
			if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("leaf key %T, want ECDSA P-256", leaf.PublicKey)
			}
			if nb := before.Add(-time.Hour); leaf.NotBefore.After(nb) || leaf.NotBefore.Before(nb.Add(-time.Minute)) {
				t.Errorf("NotBefore %v, want about an hour before %v", leaf.NotBefore, before)
			}
			if na := before.Add(defaultLeafValidity); leaf.NotAfter.Before(na.Add(-time.Second)) || leaf.NotAfter.After(na.Add(time.Minute)) {
				t.Errorf("NotAfter %v, want about %v", leaf.NotAfter, na)
			}
			// The chain presented is the leaf alone: the client has the CA
			// from its bundle, and sending a root is wasted bytes.
			if len(cert.Certificate) != 1 {
				t.Errorf("chain has %d certificates, want 1", len(cert.Certificate))
			}
			// A leaf for one name must not verify for another.
			pool := x509.NewCertPool()
			pool.AddCert(ca.Certificate())
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: pool}); err == nil {
				t.Error("leaf verifies for other.example.test")
			}
		})
	}
}

func TestLeafRejectsOtherCA(t *testing.T) {
	ca, _ := newTestCA(t)
	other, _ := newTestCA(t)
	cert, err := ca.Leaf("example.test")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.Certificate())
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.test", Roots: pool}); err == nil {
		t.Error("leaf verifies against another CA")
	}
}

func TestLeafInvalidNames(t *testing.T) {
	ca, _ := newTestCA(t)
	for _, host := range []string{
		"", ".", "..", "a..b", ".example.test", "bad host", "*.example.test",
		"é.example.test", "a/b", "a\x00b", "[]", strings.Repeat("a", 64) + ".test",
		strings.Repeat("abcdefghi.", 26) + "test",
	} {
		if _, err := ca.Leaf(host); err == nil {
			t.Errorf("Leaf(%q) succeeded, want an error", host)
		}
	}
	if got := ca.Signings(); got != 0 {
		t.Errorf("Signings()=%d after invalid names, want 0", got)
	}
}

func TestLeafCacheHit(t *testing.T) {
	ca, _ := newTestCA(t)
	first, err := ca.Leaf("cache.example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{"cache.example.test", "CACHE.example.test", "cache.example.test."} {
		again, err := ca.Leaf(spelling)
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Errorf("Leaf(%q) signed a new certificate, want the cached one", spelling)
		}
	}
	if got := ca.Signings(); got != 1 {
		t.Errorf("Signings()=%d, want 1", got)
	}
}

func TestLeafConcurrentSignsOnce(t *testing.T) {
	ca, _ := newTestCA(t)
	const n = 100
	certs := make([]*tls.Certificate, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			certs[i], errs[i] = ca.Leaf("new.example")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Leaf %d: %v", i, errs[i])
		}
		if certs[i] != certs[0] {
			t.Errorf("Leaf %d returned a different certificate from Leaf 0", i)
		}
	}
	if got := ca.Signings(); got != 1 {
		t.Errorf("Signings()=%d after %d concurrent first requests, want 1", got, n)
	}
}

func TestLeafLRUEvicts(t *testing.T) {
	ca, _ := newTestCA(t)
	ca.cache = newLRU(4)
	name := func(i int) string { return fmt.Sprintf("n%d.example.test", i) }
	leaf := func(n string) *tls.Certificate {
		t.Helper()
		c, err := ca.Leaf(n)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	first := make(map[string]*tls.Certificate)
	for i := range 4 {
		first[name(i)] = leaf(name(i))
	}
	// Use n0 so n1 becomes the least recently used.
	leaf(name(0))
	leaf(name(4))
	if got := ca.cache.len(); got != 4 {
		t.Errorf("cache holds %d leaves, want the bound 4", got)
	}
	if got := ca.Signings(); got != 5 {
		t.Fatalf("Signings()=%d, want 5", got)
	}
	if leaf(name(0)) != first[name(0)] {
		t.Error("recently used n0 was evicted")
	}
	if got := ca.Signings(); got != 5 {
		t.Errorf("Signings()=%d after a hit, want 5", got)
	}
	if leaf(name(1)) == first[name(1)] {
		t.Error("least recently used n1 was not evicted")
	}
	if got := ca.Signings(); got != 6 {
		t.Errorf("Signings()=%d after re-requesting an evicted name, want 6", got)
	}
	if got := ca.cache.len(); got != 4 {
		t.Errorf("cache holds %d leaves, want the bound 4", got)
	}
}

func TestLeafDefaultCacheBound(t *testing.T) {
	ca, _ := newTestCA(t)
	for i := range defaultCacheSize + 10 {
		if _, err := ca.Leaf(fmt.Sprintf("b%d.example.test", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ca.cache.len(); got != defaultCacheSize {
		t.Errorf("cache holds %d leaves, want %d", got, defaultCacheSize)
	}
	if got := len(ca.cache.items); got != defaultCacheSize {
		t.Errorf("cache index holds %d names, want %d", got, defaultCacheSize)
	}
}

func TestLeafRenewsNearExpiry(t *testing.T) {
	ca, _ := newTestCA(t)
	now := time.Now()
	ca.now = func() time.Time { return now }

	first, err := ca.Leaf("renew.example.test")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(19 * time.Hour) // 5h left: still fresh
	if again, _ := ca.Leaf("renew.example.test"); again != first {
		t.Error("leaf with 5h left was renewed, want the cached one")
	}
	now = now.Add(2 * time.Hour) // 3h left: inside the renewal window
	renewed, err := ca.Leaf("renew.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first {
		t.Fatal("leaf with 3h left was not renewed")
	}
	if !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Errorf("renewed NotAfter %v is not after the old %v", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
	if got := ca.Signings(); got != 2 {
		t.Errorf("Signings()=%d, want 2", got)
	}
	if again, _ := ca.Leaf("renew.example.test"); again != renewed {
		t.Error("renewed leaf was not cached")
	}
}

func TestLeafNotPastCA(t *testing.T) {
	ca, _ := newTestCA(t)
	// Pretend the CA expires in 12 hours: leaves stop there, and are not
	// re-signed on every request for lack of a longer one.
	now := ca.Certificate().NotAfter.Add(-12 * time.Hour)
	ca.now = func() time.Time { return now }
	first, err := ca.Leaf("late.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Leaf.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("leaf NotAfter %v, want the CA's %v", first.Leaf.NotAfter, ca.Certificate().NotAfter)
	}
	now = now.Add(10 * time.Hour)
	if again, _ := ca.Leaf("late.example.test"); again != first {
		t.Error("leaf capped by the CA's expiry was re-signed")
	}
}

func TestLeafUniqueSerials(t *testing.T) {
	ca, _ := newTestCA(t)
	seen := make(map[string]string)
	for i := range 1000 {
		name := fmt.Sprintf("s%d.example.test", i)
		cert, err := ca.Leaf(name)
		if err != nil {
			t.Fatal(err)
		}
		s := cert.Leaf.SerialNumber
		if s.Sign() <= 0 {
			t.Fatalf("leaf %s has serial %v, want positive", name, s)
		}
		if prev, dup := seen[s.String()]; dup {
			t.Fatalf("leaves %s and %s share serial %v", prev, name, s)
		}
		seen[s.String()] = name
	}
	if _, dup := seen[ca.Certificate().SerialNumber.String()]; dup {
		t.Error("a leaf shares the CA's serial")
	}
}

func BenchmarkLeafCached(b *testing.B) {
	ca, _ := newTestCA(b)
	if _, err := ca.Leaf("bench.example.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.Leaf("bench.example.test"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeafNew(b *testing.B) {
	ca, _ := newTestCA(b)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := ca.Leaf(fmt.Sprintf("n%d.example.test", i)); err != nil {
			b.Fatal(err)
		}
	}
}
