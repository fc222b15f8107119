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
var trustVars = []string{
	"SSL_CERT_FILE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE",
	"NODE_EXTRA_CA_CERTS", "DENO_CERT", "CARGO_HTTP_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE",
	"NIX_SSL_CERT_FILE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
}

// TrustFiles writes the bundle (system roots plus ca) into a directory of
// its own, readable by the command, and returns the trust variables.
func TrustFiles(ca *tlsca.CA, log *slog.Logger) ([]string, func(), error) {
	dir, err := os.MkdirTemp("", "ebpfjail-trust-")
	if err != nil {
		return nil, nil, fmt.Errorf("create trust directory: %w", err)
	}
	remove := func() { os.RemoveAll(dir) }
	// Readable by the jailed user: it holds certificates only, no key.
	if err := os.Chmod(dir, 0o755); err != nil {
		remove()
		return nil, nil, fmt.Errorf("create trust directory: %w", err)
	}
	bundle, err := tlsca.WriteBundle(dir, ca)
	if err != nil {
		remove()
		return nil, nil, err
	}
	env := []string{"SSL_CERT_DIR=" + filepath.Dir(bundle)}
	for _, v := range trustVars {
		env = append(env, v+"="+bundle)
	}
	log.Debug("trust bundle for the command", "path", bundle)
	return env, remove, nil
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
