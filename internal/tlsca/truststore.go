package tlsca

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"software.sslmate.com/src/go-pkcs12"
)

// TrustStoreName is the file name WriteTrustStore writes in its directory.
const TrustStoreName = "ebpfjail-ca-truststore.p12"

// DefaultCacheDir is where a root jail keeps what it can reuse from one
// start to the next (the encoded trust store): root-owned, mode 0700.
const DefaultCacheDir = "/var/cache/ebpfjail"

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
	return WriteTrustStoreCached(dir, bundlePath, "")
}

// WriteTrustStoreCached is WriteTrustStore that keeps the encoded store in
// cacheDir ("" for none), keyed by the bundle's SHA-256: parsing every
// system root and encoding them costs each jail's start about 10 ms of CPU,
// for the same bytes every time. The cache is used only as root, only
// when cacheDir and the entry are owned by root and writable by no one
// else, and only when the entry's own checksum holds; anything else is
// ignored and rebuilt. A cache that cannot be written costs only the time.
func WriteTrustStoreCached(dir, bundlePath, cacheDir string) (string, error) {
	data, err := os.ReadFile(bundlePath)
	if err != nil {
		return "", fmt.Errorf("write trust store: %w", err)
	}
	sum := sha256.Sum256(data)
	entry := trustCacheEntry(cacheDir, sum)
	pfx := readTrustCache(entry)
	if pfx == nil {
		if pfx, err = encodeTrustStore(data); err != nil {
			return "", err
		}
		writeTrustCache(entry, pfx)
	}
	path := filepath.Join(dir, TrustStoreName)
	if err := writeFileAtomic(path, pfx, 0o644); err != nil {
		return "", fmt.Errorf("write trust store: %w", err)
	}
	return path, nil
}

func encodeTrustStore(bundle []byte) ([]byte, error) {
	entries := trustEntries(bundle)
	if len(entries) == 0 {
		return nil, errors.New("write trust store: no certificate in the bundle")
	}
	pfx, err := pkcs12.Modern2023.EncodeTrustStoreEntries(entries, TrustStorePassword)
	if err != nil {
		return nil, fmt.Errorf("write trust store: %w", err)
	}
	return pfx, nil
}

// trustCachePrefix names the cache's entries; its version changes with
// anything that changes the encoding for the same bundle (aliases, format).
const trustCachePrefix = "truststore-v1-"

// trustCacheEntry is the cache file for a bundle of SHA-256 sum, "" when
// there is no usable cache: not root, or cacheDir is not a directory of
// root's that no one else can write.
func trustCacheEntry(cacheDir string, sum [sha256.Size]byte) string {
	if cacheDir == "" || os.Geteuid() != 0 {
		return ""
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return ""
	}
	st, err := os.Lstat(cacheDir)
	if err != nil || !st.IsDir() || !ownedByUsOnly(st) {
		return ""
	}
	return filepath.Join(cacheDir, trustCachePrefix+hex.EncodeToString(sum[:])+".p12")
}

// ownedByUsOnly reports whether st is owned by this process's user and
// writable by no other.
func ownedByUsOnly(st os.FileInfo) bool {
	uid, ok := fileOwner(st)
	return ok && uid == os.Geteuid() && st.Mode().Perm()&0o022 == 0
}

// readTrustCache returns the trust store kept in entry, nil if there is
// none that passes the checks: a regular file (not a link) owned by root,
// writable by no one else, whose leading SHA-256 matches the rest.
func readTrustCache(entry string) []byte {
	if entry == "" {
		return nil
	}
	lst, err := os.Lstat(entry)
	if err != nil || !lst.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(entry)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !os.SameFile(lst, st) || !ownedByUsOnly(st) || st.Size() > 16<<20 {
		return nil
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) <= sha256.Size {
		return nil
	}
	sum, pfx := b[:sha256.Size], b[sha256.Size:]
	if got := sha256.Sum256(pfx); !bytes.Equal(got[:], sum) {
		return nil
	}
	return pfx
}

// writeTrustCache keeps pfx in entry (checksum first, mode 0600) and removes
// the entries of other bundles, so the cache holds one store. Best effort.
func writeTrustCache(entry string, pfx []byte) {
	if entry == "" {
		return
	}
	dir := filepath.Dir(entry)
	if old, err := filepath.Glob(filepath.Join(dir, trustCachePrefix+"*")); err == nil {
		for _, o := range old {
			os.Remove(o)
		}
	}
	sum := sha256.Sum256(pfx)
	writeFileAtomic(entry, append(sum[:], pfx...), 0o600)
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
