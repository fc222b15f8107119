package tlsca

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"software.sslmate.com/src/go-pkcs12"
)

// TrustStoreName is the file name WriteTrustStore writes in its directory.
const TrustStoreName = "ebpfjail-ca-truststore.p12"

// TrustStorePassword opens the trust store. A PKCS#12 trust store holds
// public certificates only, so the password guards nothing secret; Java
// merely wants one to check the file's integrity, and this is the one its
// own stores use.
const TrustStorePassword = pkcs12.DefaultPassword

// WriteTrustStore writes TrustStoreName in dir, mode 0644: a PKCS#12 trust
// store (the format Java reads with javax.net.ssl.trustStoreType=PKCS12)
// holding every certificate of the PEM bundle at bundlePath, so Java, which
// reads no PEM variable, trusts what the other runtimes trust. Like the
// bundle it holds certificates only. A certificate Go cannot parse is left
// out rather than failing the run: one odd system root must not cost Java
// every other.
func WriteTrustStore(dir, bundlePath string) (string, error) {
	data, err := os.ReadFile(bundlePath)
	if err != nil {
		return "", fmt.Errorf("write trust store: %w", err)
	}
	entries := trustEntries(data)
	if len(entries) == 0 {
		return "", errors.New("write trust store: no certificate in the bundle")
	}
	pfx, err := pkcs12.Modern2023.EncodeTrustStoreEntries(entries, TrustStorePassword)
	if err != nil {
		return "", fmt.Errorf("write trust store: %w", err)
	}
	path := filepath.Join(dir, TrustStoreName)
	if err := writeFileAtomic(path, pfx, 0o644); err != nil {
		return "", fmt.Errorf("write trust store: %w", err)
	}
	return path, nil
}

// trustEntries parses the certificates of a PEM bundle, each under an alias
// of its own (Java treats equal aliases as one entry).
func trustEntries(data []byte) []pkcs12.TrustStoreEntry {
	var out []pkcs12.TrustStoreEntry
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		name := strconv.Itoa(len(out)) + " " + c.Subject.CommonName
		out = append(out, pkcs12.TrustStoreEntry{Cert: c, FriendlyName: name})
	}
}
