package tlsca

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// trustCacheFixture is a bundle of one CA, a cache directory and another
// CA's encoded store, the "foreign" bytes a bad cache entry would hold.
type trustCacheFixture struct {
	ca, other *CA
	bundle    string
	cache     string
	entry     string // the bundle's cache entry
	foreign   []byte
}

func newTrustCacheFixture(t *testing.T) *trustCacheFixture {
	t.Helper()
	testutil.RequireRoot(t)
	f := &trustCacheFixture{cache: filepath.Join(t.TempDir(), "cache")}
	f.ca, _ = newTestCA(t)
	f.other, _ = newTestCA(t)
	f.bundle = filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(f.bundle, f.ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.foreign, err = encodeTrustStore(f.other.CertPEM()); err != nil {
		t.Fatal(err)
	}
	f.entry = trustCacheEntry(f.cache, sha256.Sum256(f.ca.CertPEM()))
	if f.entry == "" {
		t.Fatal("no cache entry for a fresh root-owned directory")
	}
	return f
}

// plant writes pfx as the bundle's cache entry with a valid checksum.
func (f *trustCacheFixture) plant(t *testing.T, pfx []byte, perm os.FileMode) {
	t.Helper()
	sum := sha256.Sum256(pfx)
	if err := os.WriteFile(f.entry, append(sum[:], pfx...), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.entry, perm); err != nil {
		t.Fatal(err)
	}
}

// write runs WriteTrustStoreCached and returns the certificates the store
// it wrote for the command holds.
func (f *trustCacheFixture) write(t *testing.T) []byte {
	t.Helper()
	path, err := WriteTrustStoreCached(t.TempDir(), f.bundle, f.cache)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// holds reports whether the trust store data holds exactly ca.
func holds(t *testing.T, data []byte, ca *CA) bool {
	t.Helper()
	certs, err := pkcs12.DecodeTrustStore(data, TrustStorePassword)
	if err != nil {
		t.Fatalf("decode trust store: %v", err)
	}
	return len(certs) == 1 && certs[0].Equal(ca.Certificate())
}

func TestPrivilegedTrustStoreCacheIsReusedForTheSameBundle(t *testing.T) {
	f := newTrustCacheFixture(t)
	if got := f.write(t); !holds(t, got, f.ca) {
		t.Fatal("first store does not hold the bundle's CA")
	}
	if got := mode(t, f.entry); got != 0o600 {
		t.Errorf("cache entry mode %04o, want 0600", got)
	}
	// A valid entry of root's is used as it is: proven by planting one
	// whose bytes no encoding of this bundle would give.
	f.plant(t, f.foreign, 0o600)
	if got := f.write(t); !bytes.Equal(got, f.foreign) {
		t.Error("a valid cache entry was not reused")
	}
	// Another bundle has another entry; the old one goes.
	if err := os.WriteFile(f.bundle, f.other.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := f.write(t); !holds(t, got, f.other) {
		t.Error("store for a changed bundle does not hold its certificate")
	}
	if _, err := os.Stat(f.entry); !os.IsNotExist(err) {
		t.Errorf("the old bundle's cache entry is still there (stat: %v)", err)
	}
}

func TestPrivilegedTrustStoreCacheRefusesABadEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, f *trustCacheFixture)
	}{
		{"wrong checksum", func(t *testing.T, f *trustCacheFixture) {
			f.plant(t, f.foreign, 0o600)
			b, _ := os.ReadFile(f.entry)
			b[0] ^= 0xff
			os.WriteFile(f.entry, b, 0o600)
		}},
		{"writable by others", func(t *testing.T, f *trustCacheFixture) { f.plant(t, f.foreign, 0o666) }},
		{"not owned by root", func(t *testing.T, f *trustCacheFixture) {
			f.plant(t, f.foreign, 0o600)
			if err := os.Chown(f.entry, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
		{"a symbolic link", func(t *testing.T, f *trustCacheFixture) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			sum := sha256.Sum256(f.foreign)
			os.WriteFile(target, append(sum[:], f.foreign...), 0o600)
			if err := os.Symlink(target, f.entry); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTrustCacheFixture(t)
			tc.plant(t, f)
			if got := f.write(t); !holds(t, got, f.ca) {
				t.Fatal("a bad cache entry was used: the store does not hold the bundle's CA")
			}
			// Rebuilt: the next start finds a good entry.
			if got := readTrustCache(f.entry); got == nil || !holds(t, got, f.ca) {
				t.Error("the bad entry was not replaced by a good one")
			}
		})
	}
}

func TestPrivilegedTrustStoreCacheIsNotUsedInADirectoryOthersCanWrite(t *testing.T) {
	f := newTrustCacheFixture(t)
	f.plant(t, f.foreign, 0o600)
	if err := os.Chmod(f.cache, 0o777); err != nil {
		t.Fatal(err)
	}
	if got := f.write(t); !holds(t, got, f.ca) {
		t.Fatal("a cache directory others can write was used")
	}
	if err := os.Chmod(f.cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f.cache, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if got := f.write(t); !holds(t, got, f.ca) {
		t.Fatal("a cache directory not owned by root was used")
	}
}

// Jails start at once: each must get the store of its own bundle whatever
// the others write to or remove from the cache meanwhile.
func TestPrivilegedTrustStoreCacheIsSafeForJailsStartingAtOnce(t *testing.T) {
	f := newTrustCacheFixture(t)
	bundles := []string{f.bundle, filepath.Join(t.TempDir(), "other.pem")}
	if err := os.WriteFile(bundles[1], f.other.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cas := []*CA{f.ca, f.other}
	errs := make(chan error, 40)
	got := make([][]byte, 40)
	for i := range got {
		go func() {
			path, err := WriteTrustStoreCached(t.TempDir(), bundles[i%2], f.cache)
			if err == nil {
				got[i], err = os.ReadFile(path)
			}
			errs <- err
		}()
	}
	for range got {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range got {
		if !holds(t, data, cas[i%2]) {
			t.Errorf("start %d got the store of another bundle", i)
		}
	}
}
