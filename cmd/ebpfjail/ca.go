package main

import (
	"fmt"
	"io"
	"os"
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
	if note := unrestrictedCA(ca, tlsca.DefaultDir); note != "" {
		warnf(os.Stderr, "%s", note)
	}
	w.Write(ca.CertPEM())
	return 0, nil
}

// unrestrictedCA is the note about a CA made before the serverAuth
// restriction (empty for a restricted one). Such a CA is kept, because
// replacing it would break the trust stores it was installed in; the
// operator is told when exporting it (about to install it somewhere) and
// at -v on every run, and may replace it.
func unrestrictedCA(ca *tlsca.CA, dir string) string {
	if ca.ServerAuthOnly() {
		return ""
	}
	return "the CA in " + dir + " was made by an older ebpfjail and may sign more than TLS server certificates; remove that directory to have a restricted one made, then export and install it again"
}
