package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDir is where a real (root) jail keeps its CA. It is root-owned and
// mode 0700 so that no jailed user can read the key.
const DefaultDir = "/var/lib/ebpfjail/ca"

// CertFile is the name of the CA certificate (PEM, mode 0644) in the CA
// directory, for `ebpfjail ca path`.
const CertFile = "ca-cert.pem"

// KeyPath is where the CA key lives in dir. Nothing outside this package
// reads it; `ebpfjail check --attack` needs the name to prove a jailed
// process cannot.
func KeyPath(dir string) string { return filepath.Join(dir, keyFile) }

const (
	keyFile = "ca-key.pem"

	// caValidity is long because the CA is local to this host and every
	// renewal would mean every tool that pinned the old bundle breaks.
	caValidity = 10 * 365 * 24 * time.Hour

	// defaultLeafValidity is short: leaves live in memory only and are
	// re-minted from the cache as they near expiry, so nothing is gained
	// by making them last, and a leaf (or its key) that leaks out of the
	// process is good for a day at most.
	defaultLeafValidity = 24 * time.Hour
	// defaultRenewBefore renews a cached leaf a few hours before it
	// expires, so a connection that starts just before expiry never gets
	// a leaf that lapses mid-session.
	defaultRenewBefore = 4 * time.Hour
	// defaultCacheSize bounds the leaf cache: a jailed program that walks
	// through many names (a crawler, a scanner) must not grow it without
	// limit.
	defaultCacheSize = 1024

	// maxKeyFileSize bounds what is read from the key and certificate
	// files; a PEM P-256 key or certificate is well under 1 KiB.
	maxKeyFileSize = 64 << 10
)

// CA is a certificate authority loaded from (or created in) a directory,
// minting leaf certificates on demand. Its methods are safe for concurrent
// use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	// leafKey is shared by every leaf of this CA: leaves are only ever
	// presented by this process, so one key per leaf would cost a key
	// generation per name and buy nothing.
	leafKey *ecdsa.PrivateKey

	// Tests replace these to exercise expiry without waiting for it.
	now          func() time.Time
	leafValidity time.Duration
	renewBefore  time.Duration

	mu       sync.Mutex
	cache    *lru
	inflight map[string]*leafCall

	signings atomic.Uint64
}

// LoadOrCreate loads ca-cert.pem and ca-key.pem from dir, creating them on
// first use. The directory is created with mode 0700 (its missing parents
// 0755) and its mode is reset to 0700 if it is anything else; the key file
// is 0600 and the certificate 0644.
//
// A key file that group or others can access, or that is not owned by the
// effective user, is refused with an error that says how to fix it, and so
// is a directory owned by another user.
//
// Several processes may call LoadOrCreate on one directory at once: each
// file is written under a temporary name and hard-linked into place, which
// fails if the name exists, so exactly one key and one certificate win and
// every process loads the winners.
func LoadOrCreate(dir string) (*CA, error) {
	if err := makeDir(dir); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open ca directory: %w", err)
	}
	defer root.Close()
	if err := secureDir(root, dir); err != nil {
		return nil, err
	}

	// The key is published before the certificate, so a key without a
	// certificate means a previous run died in between (or another process
	// is about to publish one): either way the key on disk is the one to
	// certify.
	key, err := loadOrCreateKey(root, dir)
	if err != nil {
		return nil, err
	}
	cert, certPEM, err := loadOrCreateCert(root, dir, key)
	if err != nil {
		return nil, err
	}
	return newCA(cert, certPEM, key)
}

func newCA(cert *x509.Certificate, certPEM []byte, key *ecdsa.PrivateKey) (*CA, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	return &CA{
		cert:         cert,
		certPEM:      certPEM,
		key:          key,
		leafKey:      leafKey,
		now:          time.Now,
		leafValidity: defaultLeafValidity,
		renewBefore:  defaultRenewBefore,
		cache:        newLRU(defaultCacheSize),
		inflight:     make(map[string]*leafCall),
	}, nil
}

// ServerAuthOnly reports whether the CA certificate is restricted to
// server authentication (extended key usage). A CA made by an older
// ebpfjail is not; it is kept rather than replaced, because users install
// the CA into trust stores (ca export) and a new one would silently break
// every client that trusts the old one. Callers warn instead.
func (ca *CA) ServerAuthOnly() bool {
	eku := ca.cert.ExtKeyUsage
	return len(eku) == 1 && eku[0] == x509.ExtKeyUsageServerAuth && len(ca.cert.UnknownExtKeyUsage) == 0
}

// CertPEM returns the CA certificate in PEM form, for export and bundles.
func (ca *CA) CertPEM() []byte {
	return append([]byte(nil), ca.certPEM...)
}

// Certificate returns the parsed CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate {
	return ca.cert
}

// Signings reports how many leaves this CA has signed, so tests can prove
// that concurrent requests for one name sign once.
func (ca *CA) Signings() uint64 {
	return ca.signings.Load()
}

// makeDir creates dir 0700. Its parents get 0755 rather than MkdirAll's
// single mode, so a caller may keep world-readable files (the bundle) next
// to the CA directory.
func makeDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create ca directory: %w", err)
	}
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil // secureDir checks and fixes it once it is open
	}
	if err != nil {
		return fmt.Errorf("create ca directory: %w", err)
	}
	// A umask that strips the owner's bits would leave a directory we
	// cannot even open to fix; set the mode by path while it is new.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod ca directory: %w", err)
	}
	return nil
}

// secureDir checks who owns the directory and resets its mode to 0700.
// It works on the opened directory, not the path, so what is checked is what
// the files are created in.
func secureDir(root *os.Root, dir string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("open ca directory: %w", err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return fmt.Errorf("stat ca directory: %w", err)
	}
	// Whoever owns the directory can replace the files in it, so it must be
	// us.
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("check ca directory: %s is owned by uid %d, not %d (the user running ebpfjail); run: chown %d %s",
			dir, uid, os.Geteuid(), os.Geteuid(), dir)
	}
	// Also covers a directory created under a umask that strips owner bits.
	if fi.Mode().Perm() != 0o700 {
		if err := d.Chmod(0o700); err != nil {
			return fmt.Errorf("chmod ca directory %s: %w", dir, err)
		}
	}
	return nil
}

func loadOrCreateKey(root *os.Root, dir string) (*ecdsa.PrivateKey, error) {
	key, err := readKey(root, dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal ca key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := publish(root, keyFile, data, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("write ca key in %s: %w", dir, err)
	}
	// Another process may have won the race; the file is the truth.
	return readKey(root, dir)
}

func readKey(root *os.Root, dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, keyFile)
	f, err := root.Open(keyFile)
	if err != nil {
		return nil, fmt.Errorf("open ca key: %w", err)
	}
	defer f.Close()
	// Check the opened file, not the name, so the checks and the read
	// concern the same inode.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat ca key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("check ca key: %s is not a regular file (%s); remove it", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("check ca key: %s is accessible by group or others (mode %04o), so a jailed user could impersonate any host; run: chmod 600 %s",
			path, perm, path)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return nil, fmt.Errorf("check ca key: %s is owned by uid %d, not %d (the user running ebpfjail); run: chown %d %s",
			path, uid, os.Geteuid(), os.Geteuid(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize))
	if err != nil {
		return nil, fmt.Errorf("read ca key: %w", err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse ca key %s: %w", path, err)
	}
	return key, nil
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key is %T, want ECDSA P-256", key)
	}
	return ec, nil
}

func loadOrCreateCert(root *os.Root, dir string, key *ecdsa.PrivateKey) (*x509.Certificate, []byte, error) {
	cert, data, err := readCert(root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = newCACert(key, time.Now())
		if err != nil {
			return nil, nil, err
		}
		if err := publish(root, CertFile, data, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("write ca certificate in %s: %w", dir, err)
		}
		// Whichever certificate won, it certifies the key we loaded.
		cert, data, err = readCert(root, dir)
	}
	if err != nil {
		return nil, nil, err
	}

	path := filepath.Join(dir, CertFile)
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, nil, fmt.Errorf("check ca certificate: %s is not a CA certificate; remove %s and %s to create a new CA",
			path, path, filepath.Join(dir, keyFile))
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("check ca certificate: %s does not match the key %s; remove both to create a new CA",
			path, filepath.Join(dir, keyFile))
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("check ca certificate: %s expired on %s; remove %s and %s to create a new CA",
			path, cert.NotAfter.Format(time.DateOnly), path, filepath.Join(dir, keyFile))
	}
	return cert, data, nil
}

func readCert(root *os.Root, dir string) (*x509.Certificate, []byte, error) {
	f, err := root.Open(CertFile)
	if err != nil {
		return nil, nil, fmt.Errorf("open ca certificate: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize))
	if err != nil {
		return nil, nil, fmt.Errorf("read ca certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("parse ca certificate %s: no CERTIFICATE PEM block", filepath.Join(dir, CertFile))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse ca certificate %s: %w", filepath.Join(dir, CertFile), err)
	}
	// Keep only the block itself: that is what goes into bundles.
	return cert, pem.EncodeToMemory(block), nil
}

// newCACert self-signs a CA certificate for key and returns it as PEM.
func newCACert(key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"ebpfjail"},
			// The host name and a random suffix tell CAs apart in trust
			// stores and in a browser's certificate viewer (mkcert puts
			// user@host there for the same reason).
			CommonName: caCommonName(),
		},
		// An hour of slack for clients whose clock is slightly behind.
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(caValidity),
		KeyUsage:  x509.KeyUsageCertSign | x509.KeyUsageCRLSign,

		// What the CA is for: Go, browsers and most TLS stacks hold a
		// chain to the EKUs of every certificate in it, so a leaked CA key
		// can still sign web servers but no code signing, e-mail or client
		// certificates that a verifier would accept.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

		BasicConstraintsValid: true,
		IsCA:                  true,
		// Leaves only: no intermediate can chain to this CA, so a leaked
		// leaf key cannot sign further certificates. MaxPathLenZero is what
		// makes the zero explicit rather than "unset".
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func caCommonName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	// X.509 caps a CommonName at 64 characters (RFC 5280 ub-common-name),
	// and some clients enforce it: "ebpfjail CA " + host + " " + 8 hex.
	const room = 64 - len("ebpfjail CA ") - len(" ") - 8
	if len(host) > room {
		host = host[:room]
	}
	return "ebpfjail CA " + host + " " + randomHex(4)
}

// randomSerial returns a random positive 128-bit serial number, as RFC 5280
// allows (at most 20 octets) and as the CA/Browser Forum asks (at least 64
// bits of randomness), so serials never repeat across leaves or CAs.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program instead if the kernel has no randomness.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publish writes data to name inside root without ever exposing a partial
// file: it writes a temporary file, syncs it, and hard-links it to name.
// Unlike rename, link fails with an fs.ErrExist error when name exists, which
// is how a process that lost a creation race finds out.
func publish(root *os.Root, name string, data []byte, perm os.FileMode) error {
	tmp := "." + name + ".tmp-" + randomHex(8)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	// The published name keeps the inode alive; the temporary name goes
	// whether or not the link succeeds.
	defer root.Remove(tmp)
	// The umask may have removed bits from perm (the certificate must stay
	// world-readable for export) or left none for the owner.
	if err := fillAndClose(f, perm, data); err != nil {
		return err
	}
	if err := root.Link(tmp, name); err != nil {
		return err
	}
	// Make the new name durable, so a crash cannot leave a certificate that
	// was handed out (and trusted) while the key it belongs to is lost.
	if d, err := root.Open("."); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
