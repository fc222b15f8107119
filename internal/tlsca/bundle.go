package tlsca

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// BundleName is the file name WriteBundle writes in the directory it is given.
const BundleName = "ebpfjail-ca-bundle.pem"

// systemBundlePaths are where distributions keep their PEM root bundle, the
// same list crypto/x509 reads on Linux; the first that exists wins.
var systemBundlePaths = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
	"/etc/ssl/cert.pem",                                 // Alpine
}

// WriteBundle writes BundleName in dir, mode 0644: the system roots (from
// SSL_CERT_FILE if it is set, else the distribution's bundle) followed by
// the CA certificate, and returns its path. The jailed command is pointed at
// it (SSL_CERT_FILE and the like) so it trusts both the leaves the proxy
// mints and, for hosts the proxy splices unopened, the real ones; dir must
// therefore be readable by the jailed user. It holds certificates only, never
// a key.
//
// A host without any root bundle gets a bundle with only the CA: every
// intercepted connection still works, because the proxy verifies upstream
// with its own roots.
func WriteBundle(dir string, ca *CA) (string, error) {
	roots, err := systemRoots()
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	b.Write(roots)
	if b.Len() > 0 && !bytes.HasSuffix(roots, []byte("\n")) {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "# %s\n", ca.cert.Subject.CommonName)
	b.Write(ca.certPEM)

	path := filepath.Join(dir, BundleName)
	if err := writeFileAtomic(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write ca bundle: %w", err)
	}
	return path, nil
}

func systemRoots() ([]byte, error) {
	// An explicit SSL_CERT_FILE is the user's choice of roots (as for
	// crypto/x509 and OpenSSL), so failing to read it is an error rather
	// than a silent fall back to the distribution's.
	if file := os.Getenv("SSL_CERT_FILE"); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read SSL_CERT_FILE: %w", err)
		}
		return data, nil
	}
	for _, file := range systemBundlePaths {
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read system roots: %w", err)
		}
		return data, nil
	}
	return nil, nil
}

// writeFileAtomic replaces path with data, so a jailed process that opens
// the bundle while it is rewritten sees the old one or the new one, whole.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	// CreateTemp makes the file 0600, and a umask could strip bits from
	// anything else: set the mode the jailed user needs explicitly. No
	// fsync: these files live for one run (or are a checked cache), and a
	// sync on a busy disk costs a jail's start milliseconds for nothing.
	if err := fill(f, perm, data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// fillAndClose sets f's mode to perm (explicitly: a umask may have removed
// bits), writes data, syncs and closes it; f is closed whatever happens.
func fillAndClose(f *os.File, perm os.FileMode, data []byte) error {
	if err := fill(f, perm, data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fill sets f's mode to perm and writes data.
func fill(f *os.File, perm os.FileMode, data []byte) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	_, err := f.Write(data)
	return err
}
