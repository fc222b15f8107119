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
	warnUnrestrictedCA(ca, tlsca.DefaultDir)
	w.Write(ca.CertPEM())
	return 0, nil
}

// warnUnrestrictedCA says when the CA predates the serverAuth restriction:
// it is kept, because replacing it would break the trust stores it was
// installed in, but the operator should know and may replace it.
func warnUnrestrictedCA(ca *tlsca.CA, dir string) {
	if ca.ServerAuthOnly() {
		return
	}
	warnf(os.Stderr, "the CA in %s was made by an older ebpfjail and may sign more than TLS server certificates; remove that directory to have a restricted one made, then export and install it again", dir)
}
