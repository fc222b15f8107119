package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/ebpfjail/ebpfjail/internal/tlsca"
)

// runCA prints the CA certificate (export) or where it lives (path),
// creating the CA on first use like a jail would.
func runCA(w io.Writer, what string) (int, error) {
	if what == "path" {
		fmt.Fprintln(w, filepath.Join(tlsca.DefaultDir, tlsca.CertFile))
		return 0, nil
	}
	if err := needRoot("reading the CA", "ebpfjail ca export"); err != nil {
		return 0, err
	}
	ca, err := tlsca.LoadOrCreate(tlsca.DefaultDir)
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	w.Write(ca.CertPEM())
	return 0, nil
}

// warnUnrestrictedCA says when the CA predates the serverAuth restriction:
// it is kept, because replacing it would break the trust stores it was
// installed in, but the operator should know and may replace it.
func warnUnrestrictedCA(ca *tlsca.CA, dir string, log *slog.Logger) {
	if ca.ServerAuthOnly() {
		return
	}
	log.Warn("the CA was made by an older ebpfjail and is not restricted to TLS servers; remove " + dir +
		" to have a restricted one made, then export and install it again")
}
