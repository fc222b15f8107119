package tlsca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// bundleCerts parses every certificate in a PEM bundle.
func bundleCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("bundle holds a %q PEM block; it must hold certificates only", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

func TestWriteBundle(t *testing.T) {
	ca, _ := newTestCA(t)
	// Another CA stands in for the system roots.
	system, _ := newTestCA(t)
	roots := filepath.Join(t.TempDir(), "roots.pem")
	// No trailing newline: the bundle must still separate the blocks.
	if err := os.WriteFile(roots, bytes.TrimRight(system.CertPEM(), "\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", roots)

	dir := t.TempDir()
	path, err := WriteBundle(dir, ca)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, BundleName); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if got := mode(t, path); got != 0o644 {
		t.Errorf("bundle mode %04o, want 0644", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs := bundleCerts(t, data)
	if len(certs) != 2 || !certs[0].Equal(system.Certificate()) || !certs[1].Equal(ca.Certificate()) {
		t.Fatalf("bundle holds %d certificates, want the system root then the CA", len(certs))
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Error("bundle contains a private key")
	}

	// A client trusting the bundle accepts the CA's leaves.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("bundle does not parse as a pool")
	}
	leaf, err := ca.Leaf("bundle.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "bundle.example.test", Roots: pool}); err != nil {
		t.Errorf("leaf does not verify against the bundle: %v", err)
	}

	// Rewriting replaces the file and leaves nothing else behind.
	if _, err := WriteBundle(dir, ca); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("%d entries in the bundle directory, want 1", len(entries))
	}
}

func TestWriteBundleSystemPaths(t *testing.T) {
	ca, _ := newTestCA(t)
	system, _ := newTestCA(t)
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty.pem")
	found := filepath.Join(tmp, "found.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(found, system.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	old := systemBundlePaths
	systemBundlePaths = []string{filepath.Join(tmp, "missing.pem"), empty, found}
	t.Cleanup(func() { systemBundlePaths = old })
	t.Setenv("SSL_CERT_FILE", "")

	path, err := WriteBundle(t.TempDir(), ca)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs := bundleCerts(t, data)
	if len(certs) != 2 || !certs[0].Equal(system.Certificate()) || !certs[1].Equal(ca.Certificate()) {
		t.Errorf("bundle holds %d certificates, want the first non-empty system bundle then the CA", len(certs))
	}

	// No system bundle at all: the CA alone, not an error.
	systemBundlePaths = []string{filepath.Join(tmp, "missing.pem")}
	path, err = WriteBundle(t.TempDir(), ca)
	if err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if certs := bundleCerts(t, data); len(certs) != 1 || !certs[0].Equal(ca.Certificate()) {
		t.Errorf("bundle holds %d certificates, want the CA alone", len(certs))
	}
}

func TestWriteBundleRealSystemRoots(t *testing.T) {
	t.Setenv("SSL_CERT_FILE", "")
	var system string
	for _, p := range systemBundlePaths {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			system = p
			break
		}
	}
	if system == "" {
		t.Skip("skipping: no system root bundle on this host")
	}
	ca, _ := newTestCA(t)
	path, err := WriteBundle(t.TempDir(), ca)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := os.ReadFile(system)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, roots) {
		t.Errorf("bundle does not start with %s", system)
	}
	if !bytes.HasSuffix(data, ca.CertPEM()) {
		t.Error("bundle does not end with the CA certificate")
	}
}

func TestWriteBundleBadSSLCertFile(t *testing.T) {
	ca, _ := newTestCA(t)
	t.Setenv("SSL_CERT_FILE", filepath.Join(t.TempDir(), "missing.pem"))
	if _, err := WriteBundle(t.TempDir(), ca); err == nil {
		t.Error("WriteBundle ignored an unreadable SSL_CERT_FILE")
	}
}
