// Command ebpfjail runs a command so that every network connection it and
// its descendants make is steered by the kernel into ebpfjail.
//
// This package is the command line only: flags, usage, exit statuses and
// human output; the work is done by the internal packages, wired in run.go.
package main
