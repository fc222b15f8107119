package tlsca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// newTestCA creates a CA in a fresh directory and returns it with the
// directory.
func newTestCA(tb testing.TB) (*CA, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "ca")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		tb.Fatalf("LoadOrCreate: %v", err)
	}
	return ca, dir
}

func mode(tb testing.TB, path string) os.FileMode {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCAConstraints(t *testing.T) {
	ca, _ := newTestCA(t)
	c := ca.Certificate()

	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("MaxPathLen=%d MaxPathLenZero=%v, want 0 and true", c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
		t.Errorf("KeyUsage=%v, want %v", c.KeyUsage, want)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v, want %v", c.SignatureAlgorithm, x509.ECDSAWithSHA256)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	host, _ := os.Hostname()
	if cn := c.Subject.CommonName; !strings.HasPrefix(cn, "ebpfjail CA "+host+" ") || len(cn) > 64 {
		t.Errorf("CommonName %q, want \"ebpfjail CA %s <random>\" within 64 characters", cn, host)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v, want a large positive random number", c.SerialNumber)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("validity %v, want about 10 years", life)
	}
	if !bytes.Contains(ca.CertPEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("CertPEM is not a PEM certificate:\n%s", ca.CertPEM())
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no SubjectKeyId; leaves would lack an AuthorityKeyId")
	}
}

func TestCADistinctNames(t *testing.T) {
	a, _ := newTestCA(t)
	b, _ := newTestCA(t)
	if a.Certificate().Subject.CommonName == b.Certificate().Subject.CommonName {
		t.Errorf("two CAs share the CommonName %q; they must be told apart in trust stores", a.Certificate().Subject.CommonName)
	}
	if a.Certificate().SerialNumber.Cmp(b.Certificate().SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
}

func TestLoadOrCreateReuses(t *testing.T) {
	first, dir := newTestCA(t)
	second, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if !bytes.Equal(first.Certificate().Raw, second.Certificate().Raw) {
		t.Error("second LoadOrCreate made a new certificate, want the one on disk")
	}
	if !bytes.Equal(first.CertPEM(), second.CertPEM()) {
		t.Error("CertPEM differs between loads")
	}
	if !first.key.Equal(second.key) {
		t.Error("second LoadOrCreate loaded a different key")
	}
	// A leaf the reloaded CA signs chains to the first one's certificate.
	leaf, err := second.Leaf("reuse.example.test")
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, first, leaf.Leaf, "reuse.example.test")
}

func TestLoadOrCreateModes(t *testing.T) {
	check := func(t *testing.T, dir string) {
		t.Helper()
		for _, c := range []struct {
			path string
			want os.FileMode
		}{
			{dir, 0o700},
			{filepath.Join(dir, keyFile), 0o600},
			{filepath.Join(dir, CertFile), 0o644},
		} {
			if got := mode(t, c.path); got != c.want {
				t.Errorf("mode of %s = %04o, want %04o", c.path, got, c.want)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("directory holds %v, want only %s and %s", names, CertFile, keyFile)
		}
	}

	t.Run("created", func(t *testing.T) {
		_, dir := newTestCA(t)
		check(t, dir)
	})
	t.Run("umask", func(t *testing.T) {
		// A umask that strips the owner's bits and everything else must
		// not leave the certificate unreadable or the directory unusable.
		base := t.TempDir()
		old := syscall.Umask(0o377)
		_, err := LoadOrCreate(filepath.Join(base, "ca"))
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("LoadOrCreate under umask 0377: %v", err)
		}
		check(t, filepath.Join(base, "ca"))
	})
	t.Run("existing dir too open", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ca")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o775); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		check(t, dir)
		// And again for a directory that already holds the CA.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		check(t, dir)
	})
	t.Run("parents", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "lib", "ebpfjail", "ca")
		if _, err := LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		check(t, dir)
		// Parents stay traversable so a bundle can live beside the CA.
		if got := mode(t, filepath.Dir(dir)); got != 0o755 {
			t.Errorf("mode of parent %s = %04o, want 0755", filepath.Dir(dir), got)
		}
	})
}

// TestKeyUnreadableByOthers checks the mode bits that keep a jailed user
// away from the key; TestPrivilegedJailedUserCannotReadKey checks the same
// by trying.
func TestKeyUnreadableByOthers(t *testing.T) {
	_, dir := newTestCA(t)
	if got := mode(t, dir); got&0o077 != 0 {
		t.Errorf("ca directory mode %04o gives group or others access", got)
	}
	if got := mode(t, filepath.Join(dir, keyFile)); got&0o077 != 0 {
		t.Errorf("ca key mode %04o gives group or others access", got)
	}
}

func TestLoadOrCreateRefusesAccessibleKey(t *testing.T) {
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		t.Run(perm.String(), func(t *testing.T) {
			_, dir := newTestCA(t)
			key := filepath.Join(dir, keyFile)
			if err := os.Chmod(key, perm); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if err == nil {
				t.Fatalf("LoadOrCreate accepted a key with mode %04o", perm)
			}
			if msg := err.Error(); !strings.Contains(msg, "chmod 600 "+key) {
				t.Errorf("error %q does not name the fix (chmod 600 %s)", msg, key)
			}
			// Refusing must not "fix" the key by replacing it: it may
			// already have leaked, and the user must decide.
			if got := mode(t, key); got != perm {
				t.Errorf("key mode changed to %04o by a refused load", got)
			}
			if err := os.Chmod(key, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreate(dir); err != nil {
				t.Errorf("LoadOrCreate after the suggested chmod: %v", err)
			}
		})
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 16
	cas := make([]*CA, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			cas[i], errs[i] = LoadOrCreate(dir)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("LoadOrCreate %d: %v", i, err)
		}
	}
	for i, ca := range cas[1:] {
		if !bytes.Equal(ca.Certificate().Raw, cas[0].Certificate().Raw) {
			t.Errorf("LoadOrCreate %d returned a different certificate from LoadOrCreate 0", i+1)
		}
		if !ca.key.Equal(cas[0].key) {
			t.Errorf("LoadOrCreate %d returned a different key from LoadOrCreate 0", i+1)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("%d entries left in the directory, want 2 (no temporary files)", len(entries))
	}
}

func TestLoadOrCreateKeyWithoutCert(t *testing.T) {
	// A run that died between publishing the key and the certificate
	// leaves a key alone; the next run certifies that key.
	first, dir := newTestCA(t)
	if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.key.Equal(second.key) {
		t.Error("a new key was made although one was on disk")
	}
	if !first.key.PublicKey.Equal(second.Certificate().PublicKey) {
		t.Error("the new certificate does not certify the key on disk")
	}
	if got := mode(t, filepath.Join(dir, CertFile)); got != 0o644 {
		t.Errorf("recreated certificate mode %04o, want 0644", got)
	}
}

func TestLoadOrCreateRejectsMismatch(t *testing.T) {
	_, dir := newTestCA(t)
	_, other := newTestCA(t)
	data, err := os.ReadFile(filepath.Join(other, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("got %v, want a certificate/key mismatch error", err)
	}
}

func TestLoadOrCreateRejectsGarbage(t *testing.T) {
	for _, file := range []string{keyFile, CertFile} {
		t.Run(file, func(t *testing.T) {
			_, dir := newTestCA(t)
			if err := os.WriteFile(filepath.Join(dir, file), []byte("not pem\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "parse ca") {
				t.Errorf("got %v, want a parse error", err)
			}
		})
	}
}

func TestPrivilegedKeyOwner(t *testing.T) {
	testutil.RequireRoot(t)
	_, dir := newTestCA(t)
	key := filepath.Join(dir, keyFile)
	if err := os.Chown(key, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "chown 0 "+key) {
		t.Errorf("got %v, want an ownership error naming chown 0 %s", err, key)
	}
}

func TestPrivilegedDirOwner(t *testing.T) {
	testutil.RequireRoot(t)
	_, dir := newTestCA(t)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "chown 0 "+dir) {
		t.Errorf("got %v, want an ownership error naming chown 0 %s", err, dir)
	}
}

// TestPrivilegedJailedUserCannotReadKey creates the CA as root and tries to
// read the key as nobody, the way a jailed command would.
func TestPrivilegedJailedUserCannotReadKey(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("skipping: no setpriv (util-linux)")
	}
	// t.TempDir's parent is 0700, which would hide the key whatever its
	// mode; this base is open so the CA's own modes are what is tested.
	base, err := os.MkdirTemp("", "tlsca-jailed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "ca")
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	key, cert := filepath.Join(dir, keyFile), filepath.Join(dir, CertFile)

	catAsNobody := func(path string) ([]byte, error) {
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "cat", path)
		return cmd.CombinedOutput()
	}

	// Control: nobody can read a world-readable file beside the CA, so the
	// failures below come from the CA's modes, not from setpriv or /tmp.
	control := filepath.Join(base, "control")
	if err := os.WriteFile(control, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := catAsNobody(control); err != nil {
		t.Fatalf("control: nobody cannot read %s: %v\n%s", control, err, out)
	}

	if out, err := catAsNobody(key); err == nil {
		t.Errorf("nobody read the key through the 0700 directory:\n%s", out)
	}
	// Even with the directory opened up, the key's own mode keeps it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := catAsNobody(key); err == nil {
		t.Errorf("nobody read the 0600 key:\n%s", out)
	}
	if out, err := catAsNobody(cert); err != nil {
		t.Errorf("control: nobody cannot read the 0644 certificate: %v\n%s", err, out)
	}
	// And the next load closes the directory again.
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("directory mode %04o after reload, want 0700", got)
	}
}

// TestLoadOrCreateProcesses races LoadOrCreate across processes (this test
// binary re-run as a helper), which share nothing but the directory.
func TestLoadOrCreateProcesses(t *testing.T) {
	if dir := os.Getenv("TLSCA_TEST_HELPER_DIR"); dir != "" {
		ca, err := LoadOrCreate(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("fingerprint=%x\n", sha256.Sum256(ca.Certificate().Raw))
		os.Exit(0)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(exe, "-test.run=^TestLoadOrCreateProcesses$")
		cmds[i].Env = append(os.Environ(), "TLSCA_TEST_HELPER_DIR="+dir)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i].String())
		}
	}
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("fingerprint=%x\n", sha256.Sum256(ca.Certificate().Raw))
	for i := range outs {
		if got := outs[i].String(); got != want {
			t.Errorf("helper %d printed %q, want %q", i, got, want)
		}
	}
}

// TestCAIsForServerAuthOnly: a leaked CA key can sign web server
// certificates, but a client or code-signing certificate it signs does not
// verify (the CA's extended key usage bounds its chain's).
func TestCAIsForServerAuthOnly(t *testing.T) {
	ca, _ := newTestCA(t)
	if !ca.ServerAuthOnly() {
		t.Fatalf("new CA's extended key usage: got %v, want serverAuth only", ca.Certificate().ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	leaf, err := ca.Leaf("eku.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "eku.example.test"}); err != nil {
		t.Errorf("a leaf for server auth does not verify: %v", err)
	}
	if got := leaf.Leaf.NotAfter.Sub(leaf.Leaf.NotBefore); got > 26*time.Hour {
		t.Errorf("leaf lifetime: got %v, want about a day", got)
	}
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageEmailProtection} {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "forged"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate(), &ca.leafKey.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := x509.ParseCertificate(der)
		if _, err := forged.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{eku}}); err == nil {
			t.Errorf("a certificate for extended key usage %v signed by the CA verifies, want it refused", eku)
		}
	}
}

// TestCAWithoutEKUIsKept: a CA made before the EKU was added is kept (users
// installed it; replacing it would break them silently) and reported.
func TestCAWithoutEKUIsKept(t *testing.T) {
	ca, dir := newTestCA(t)
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "old ebpfjail CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	old := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, CertFile), old, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("LoadOrCreate with an old CA: %v", err)
	}
	if !bytes.Equal(again.CertPEM(), old) {
		t.Error("the old CA certificate was replaced, want it kept")
	}
	if again.ServerAuthOnly() {
		t.Error("ServerAuthOnly() of a CA without extended key usage: got true, want false")
	}
}
