package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// buildEngine compiles or starts the rule before anything else happens, so
// a bad rule stops ebpfjail before the command could run.
func buildEngine(o *options, log *slog.Logger, user *jail.User) (rules.Engine, error) {
	log = log.With("component", "rule")
	// --sh and --proc run outside the jail as the invoking user, never as
	// root on the command's behalf.
	cred := &syscall.Credential{Uid: user.UID, Gid: user.GID, Groups: user.Groups}
	var e rules.Engine
	var err error
	switch {
	case o.js != "":
		e, err = rules.NewJS(o.js, "--js", rules.JSOptions{Timeout: o.jsTimeout, Logger: log})
	case o.jsFile != "":
		// Read once with a command: the jailed command must not be able to
		// rewrite its own policy. A --server proxy reloads it on change.
		e, err = rules.NewJSFile(o.jsFile, rules.JSOptions{Timeout: o.jsTimeout, Logger: log}, o.server)
	case o.sh != "":
		e, err = rules.NewShell(o.sh, rules.ShellOptions{Logger: log, Credential: cred, Env: os.Environ()})
	case o.proc != "":
		e, err = rules.NewLineProcess(o.proc, rules.ProcOptions{Logger: log, Credential: cred, Env: os.Environ()})
	default:
		e = rules.DenyAll()
		if o.audit {
			// --audit alone: allow and record everything.
			return auditEngine{}, nil
		}
	}
	if err != nil {
		return nil, fail(exitFailure, err, "fix the rule; 'ebpfjail --js RULE --test URL' tries one without a jail")
	}
	if o.audit {
		return auditEngine{rule: e}, nil
	}
	return e, nil
}

// trustVars are the variables runtimes read for extra or replacement CA
// bundles (DESIGN.md §5). Each gets the bundle: system roots plus ours.
var trustVars = []string{
	"SSL_CERT_FILE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE",
	"NODE_EXTRA_CA_CERTS", "DENO_CERT", "CARGO_HTTP_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE",
	"NIX_SSL_CERT_FILE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
}

// trust loads (or makes) the CA and writes the bundle the command reads;
// it returns the CA, the variables to set, and a function removing the
// bundle.
func trust(log *slog.Logger) (*tlsca.CA, []string, func(), error) {
	ca, err := tlsca.LoadOrCreate(tlsca.DefaultDir)
	if err != nil {
		return nil, nil, nil, fail(exitFailure, err, "ebpfjail keeps its CA in "+tlsca.DefaultDir+" (root only)")
	}
	if note := unrestrictedCA(ca, tlsca.DefaultDir); note != "" {
		log.Info(note)
	}
	env, remove, err := trustFiles(ca, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, env, remove, nil
}

// trustFiles writes the bundle (system roots plus ca) into a directory of
// its own, readable by the command, and returns the trust variables.
func trustFiles(ca *tlsca.CA, log *slog.Logger) ([]string, func(), error) {
	dir, err := os.MkdirTemp("", "ebpfjail-trust-")
	if err != nil {
		return nil, nil, fail(exitFailure, fmt.Errorf("create trust directory: %w", err))
	}
	remove := func() { os.RemoveAll(dir) }
	// Readable by the jailed user: it holds certificates only, no key.
	if err := os.Chmod(dir, 0o755); err != nil {
		remove()
		return nil, nil, fail(exitFailure, fmt.Errorf("create trust directory: %w", err))
	}
	bundle, err := tlsca.WriteBundle(dir, ca)
	if err != nil {
		remove()
		return nil, nil, fail(exitFailure, err)
	}
	env := []string{"SSL_CERT_DIR=" + filepath.Dir(bundle)}
	for _, v := range trustVars {
		env = append(env, v+"="+bundle)
	}
	log.Debug("trust bundle for the command", "path", bundle)
	return env, remove, nil
}

// withEnv returns env with each KEY=VALUE of set replacing any KEY there.
func withEnv(env, set []string) []string {
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
