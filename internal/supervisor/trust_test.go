package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

func TestTrustFilesPointEveryRuntimeAtTheBundle(t *testing.T) {
	ca, err := tlsca.LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"JAVA_TOOL_OPTIONS=-Xmx64m", "PHP_INI_SCAN_DIR=/etc/php.d"}
	set, remove, err := TrustFiles(ca, env, t.TempDir(), testutil.DiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	bundle := lookupEnv(set, "SSL_CERT_FILE")
	for _, v := range []string{"npm_config_cafile", "NPM_CONFIG_CAFILE", "HTTPLIB2_CA_CERTS", "REQUESTS_CA_BUNDLE", "YARN_HTTPS_CA_FILE_PATH"} {
		if got := lookupEnv(set, v); got != bundle || got == "" {
			t.Errorf("%s=%q, want the bundle %q", v, got, bundle)
		}
	}
	dir := filepath.Dir(bundle)
	java := lookupEnv(set, "JAVA_TOOL_OPTIONS")
	wantJava := "-Xmx64m -Djavax.net.ssl.trustStore=" + filepath.Join(dir, "java", tlsca.TrustStoreName) +
		" -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword=changeit"
	if java != wantJava {
		t.Errorf("JAVA_TOOL_OPTIONS=%q, want %q", java, wantJava)
	}
	if got, want := lookupEnv(set, "PHP_INI_SCAN_DIR"), "/etc/php.d:"+filepath.Join(dir, "php"); got != want {
		t.Errorf("PHP_INI_SCAN_DIR=%q, want %q", got, want)
	}
	if rc, err := os.ReadFile(lookupEnv(set, "WGETRC")); err != nil || string(rc) != "ca_certificate = "+bundle+"\n" {
		t.Errorf("wgetrc: %q (%v), want ca_certificate naming the bundle", rc, err)
	}
	ini, err := os.ReadFile(filepath.Join(dir, "php", "ebpfjail-ca.ini"))
	if err != nil || !strings.Contains(string(ini), `curl.cainfo="`+bundle+`"`) {
		t.Errorf("php ini: %q (%v), want curl.cainfo naming the bundle", ini, err)
	}
	for _, f := range []string{bundle, filepath.Join(dir, "java", tlsca.TrustStoreName), filepath.Join(dir, "php", "ebpfjail-ca.ini")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v, want mode 0644 (readable by the jailed user)", f, err)
		}
	}
	// SSL_CERT_DIR: runtimes read each file there as certificates.
	if got := lookupEnv(set, "SSL_CERT_DIR"); got != dir {
		t.Errorf("SSL_CERT_DIR=%q, want %q", got, dir)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && e.Name() != tlsca.BundleName {
			t.Errorf("SSL_CERT_DIR holds %s besides the bundle", e.Name())
		}
	}
	// The jailed user reads this directory: certificates only, never a key.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); err == nil && !d.IsDir() && strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s holds a private key", p)
		}
		return nil
	})
}

func TestTrustFilesKeepTheUsersOwnSettings(t *testing.T) {
	if got, _ := phpScanDir("", "/t/php"); got != ":/t/php" {
		t.Errorf("got %q, want %q (the empty entry is PHP's compiled-in directory)", got, ":/t/php")
	}
	if _, ok := phpScanDir("", "/t:x/php"); ok {
		t.Error("a directory holding the list separator was added")
	}
	if got, _ := writeWgetrc(t.TempDir(), "/b.pem", []string{"WGETRC=/mine"}); got != "" {
		t.Errorf("the user's own WGETRC was replaced by %q", got)
	}
	if _, ok := javaOptions("", "/t x/store.p12"); ok {
		t.Error("a trust store path holding a space was put in JAVA_TOOL_OPTIONS")
	}
}
