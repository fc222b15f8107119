package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// CADir is where the CA lives: root's in /var/lib, anyone else's (--weak,
// --server without root) in their own config directory.
func CADir() string {
	if os.Geteuid() == 0 {
		return tlsca.DefaultDir
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "ebpfjail", "ca")
	}
	return filepath.Join(os.Getenv("HOME"), ".config", "ebpfjail", "ca")
}

// LoadCA loads (or makes) the CA in dir; a note about an old, unrestricted
// one is logged (-v).
func LoadCA(dir string, log *slog.Logger) (*tlsca.CA, error) {
	ca, err := tlsca.LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	if note := UnrestrictedNote(ca, dir); note != "" {
		log.Info(note)
	}
	return ca, nil
}

// UnrestrictedNote is the note about a CA made before the serverAuth
// restriction (empty for a restricted one). Such a CA is kept, because
// replacing it would break the trust stores it was installed in; the
// operator is told when exporting it (about to install it somewhere) and
// at -v on every run, and may replace it.
func UnrestrictedNote(ca *tlsca.CA, dir string) string {
	if ca.ServerAuthOnly() {
		return ""
	}
	return "the CA in " + dir + " was made by an older ebpfjail and may sign more than TLS server certificates; remove that directory to have a restricted one made, then export and install it again"
}

// trustVars are the variables runtimes read for extra or replacement CA
// bundles. Each gets the bundle: system roots plus ours.
//
// npm_config_cafile matters most: npm (and pnpm, and yarn 1, which read the
// same setting) pass a configured cafile to node as the whole CA list, so a
// cafile in any npmrc (Debian's npm ships one naming the system bundle)
// beats NODE_EXTRA_CA_CERTS, while npm_config_* in the environment beats
// every npmrc file. npm reads the prefix in any case, so both spellings are
// set: a user's NPM_CONFIG_CAFILE left beside ours would make the winner
// depend on the environment's order.
var trustVars = []string{
	"SSL_CERT_FILE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE",
	"NODE_EXTRA_CA_CERTS", "DENO_CERT", "CARGO_HTTP_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE",
	"NIX_SSL_CERT_FILE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
	"npm_config_cafile", "NPM_CONFIG_CAFILE", // npm, pnpm, yarn 1
	"YARN_HTTPS_CA_FILE_PATH",            // yarn 2 and later
	"HTTPLIB2_CA_CERTS",                  // httplib2 (google-api-python-client)
	"BUNDLE_SSL_CA_CERT",                 // Ruby's bundler
	"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", // gcloud
	"HEX_CACERTS_PATH",                   // Elixir's hex
}

// TrustFiles writes the bundle (system roots plus ca) into a directory of
// its own, readable by the command, with the same certificates as a Java
// trust store and a PHP ini file, and returns the variables that point the
// command's runtimes at them; env is the command's environment, whose
// JAVA_TOOL_OPTIONS and PHP_INI_SCAN_DIR are extended rather than replaced.
// The Java store is kept in cacheDir (tlsca.WriteTrustStoreCached).
func TrustFiles(ca *tlsca.CA, env []string, cacheDir string, log *slog.Logger) ([]string, func(), error) {
	dir, err := os.MkdirTemp("", "ebpfjail-trust-")
	if err != nil {
		return nil, nil, fmt.Errorf("create trust directory: %w", err)
	}
	remove := func() { os.RemoveAll(dir) }
	set, err := writeTrust(dir, ca, env, cacheDir)
	if err != nil {
		remove()
		return nil, nil, err
	}
	log.Debug("trust bundle for the command", "dir", dir)
	return set, remove, nil
}

func writeTrust(dir string, ca *tlsca.CA, env []string, cacheDir string) ([]string, error) {
	// Readable by the jailed user: it holds certificates only, no key.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create trust directory: %w", err)
	}
	bundle, err := tlsca.WriteBundle(dir, ca)
	if err != nil {
		return nil, err
	}
	set := []string{"SSL_CERT_DIR=" + filepath.Dir(bundle)}
	for _, v := range trustVars {
		set = append(set, v+"="+bundle)
	}
	// The other files go in subdirectories: the top one is SSL_CERT_DIR,
	// where runtimes read every file as a certificate.
	javaDir, err := readableDir(dir, "java")
	if err != nil {
		return nil, err
	}
	store, err := tlsca.WriteTrustStoreCached(javaDir, bundle, cacheDir)
	if err != nil {
		return nil, err
	}
	if v, ok := javaOptions(lookupEnv(env, "JAVA_TOOL_OPTIONS"), store); ok {
		set = append(set, "JAVA_TOOL_OPTIONS="+v)
	}
	phpDir, err := writePHPIni(dir, bundle)
	if err != nil {
		return nil, err
	}
	if v, ok := phpScanDir(lookupEnv(env, "PHP_INI_SCAN_DIR"), phpDir); ok {
		set = append(set, "PHP_INI_SCAN_DIR="+v)
	}
	wgetrc, err := writeWgetrc(dir, bundle, env)
	if err != nil {
		return nil, err
	}
	if wgetrc != "" {
		set = append(set, "WGETRC="+wgetrc)
	}
	return set, nil
}

// writeWgetrc writes a wgetrc naming the bundle, for Debian's wget: built
// on GnuTLS, it reads no CA variable, only ca_certificate from a wgetrc.
// WGETRC replaces the user's ~/.wgetrc (the system's /etc/wgetrc is read
// either way), and the user's file is not copied into a directory the
// jailed user reads, so a user who has a wgetrc of their own keeps it and
// gets none ("" returned): they add ca_certificate themselves.
func writeWgetrc(dir, bundle string, env []string) (string, error) {
	if lookupEnv(env, "WGETRC") != "" {
		return "", nil
	}
	if home := lookupEnv(env, "HOME"); home != "" {
		if _, err := os.Lstat(filepath.Join(home, ".wgetrc")); err == nil {
			return "", nil
		}
	}
	return writeReadable(dir, "wget", "wgetrc", "ca_certificate = "+bundle+"\n")
}

// javaOptions appends the trust store to the user's JAVA_TOOL_OPTIONS:
// Java reads no PEM bundle, only a key store. The JVM splits the variable at
// white space, so a path holding any is left out (Java then trusts only
// its own roots) rather than split into nonsense options.
func javaOptions(old, store string) (string, bool) {
	if strings.ContainsAny(store, " \t\n\"'") {
		return "", false
	}
	opts := "-Djavax.net.ssl.trustStore=" + store +
		" -Djavax.net.ssl.trustStoreType=PKCS12" +
		" -Djavax.net.ssl.trustStorePassword=" + tlsca.TrustStorePassword
	if old = strings.TrimSpace(old); old != "" {
		opts = old + " " + opts
	}
	return opts, true
}

// writePHPIni writes php/ebpfjail-ca.ini: PHP's curl extension reads no
// variable at all (libcurl's compiled-in bundle), and its streams read
// openssl.cafile before OpenSSL's SSL_CERT_FILE.
func writePHPIni(dir, bundle string) (string, error) {
	ini := "curl.cainfo=\"" + bundle + "\"\nopenssl.cafile=\"" + bundle + "\"\n"
	path, err := writeReadable(dir, "php", "ebpfjail-ca.ini", ini)
	return filepath.Dir(path), err
}

// writeReadable writes dir/sub/name (mode 0644, in a directory of mode
// 0755, whatever the umask: the jailed user reads them) and returns its
// path.
func writeReadable(dir, sub, name, data string) (string, error) {
	d, err := readableDir(dir, sub)
	if err != nil {
		return "", err
	}
	path := filepath.Join(d, name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// readableDir makes dir/sub, mode 0755.
func readableDir(dir, sub string) (string, error) {
	d := filepath.Join(dir, sub)
	if err := os.Mkdir(d, 0o755); err != nil {
		return "", fmt.Errorf("create trust directory: %w", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return "", fmt.Errorf("create trust directory: %w", err)
	}
	return d, nil
}

// phpScanDir adds dir to PHP's list of ini directories. PHP reads the
// list colon-separated, and an empty entry stands for its compiled-in
// directory, where distributions load the extensions: with no list of the
// user's, ":dir" keeps those and adds ours. A dir that holds a colon or a
// quote is left out.
func phpScanDir(old, dir string) (string, bool) {
	if strings.ContainsAny(dir, ":\"") {
		return "", false
	}
	return old + ":" + dir, true
}

// lookupEnv is env's value for key ("" when unset).
func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// WithEnv returns env with each KEY=VALUE of set replacing any KEY there.
func WithEnv(env, set []string) []string {
	keys := map[string]bool{}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}
