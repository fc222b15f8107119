//go:build !linux

package secrets

// scrubEnviron does nothing where the initial environment is not a
// readable file of the process.
func scrubEnviron([]string) error { return nil }
