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
// creating the CA on first use like a jail would. The CA is the one this
// user's runs use (supervisor.CADir): root's for root (sudo), a user's
// own for --server and --weak without root.
func runCA(w io.Writer, what string) (int, error) {
	dir := supervisor.CADir()
	if what == "path" {
		fmt.Fprintln(w, filepath.Join(dir, tlsca.CertFile))
		return 0, nil
	}
	ca, err := tlsca.LoadOrCreate(dir)
	if err != nil {
		return 0, fail(exitFailure, err)
	}
	if note := supervisor.UnrestrictedNote(ca, dir); note != "" {
		warnf(os.Stderr, "%s", note)
	}
	w.Write(ca.CertPEM())
	return 0, nil
}
