package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

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
