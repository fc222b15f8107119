package tlsca

import (
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

func TestWriteTrustStoreHoldsEveryCertificateOfTheBundle(t *testing.T) {
	ca, _ := newTestCA(t)
	system, _ := newTestCA(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	// A block that is not a certificate and one Go cannot parse are skipped.
	junk := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
	if err := os.WriteFile(bundle, append(append(system.CertPEM(), junk...), ca.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := WriteTrustStore(dir, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(t, path); got != 0o644 {
		t.Errorf("trust store mode %04o, want 0644", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pkcs12.DecodeTrustStore(data, TrustStorePassword)
	if err != nil {
		t.Fatalf("decode trust store: %v", err)
	}
	if len(certs) != 2 || !certs[0].Equal(system.Certificate()) || !certs[1].Equal(ca.Certificate()) {
		t.Errorf("trust store holds %d certificates, want the system root then the CA", len(certs))
	}
}

func TestWriteTrustStoreRefusesABundleWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, []byte("not pem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteTrustStore(dir, bundle); err == nil {
		t.Error("got a trust store from a bundle without certificates, want an error")
	}
}
