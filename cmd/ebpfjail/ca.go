package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ebpfjail/ebpfjail/internal/supervisor"
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
	if note := supervisor.UnrestrictedNote(ca, tlsca.DefaultDir); note != "" {
		warnf(os.Stderr, "%s", note)
	}
	w.Write(ca.CertPEM())
	return 0, nil
}
