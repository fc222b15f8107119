// Command ebpfjail runs a command so that every network connection it and
// its descendants make is steered by the kernel into ebpfjail.
//
// This package is the command line only: flags, usage, exit statuses,
// hints and human output. Each mode is one call into internal/supervisor
// (or internal/attack for check --attack), whose errors name the step
// that failed; runError turns them into a status and hints.
package main
