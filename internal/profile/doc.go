// Package profile writes a CPU profile of a whole ebpfjail run and a heap
// profile at its end, when the environment asks for them; it is for
// performance work on ebpfjail itself, not a user-facing feature.
package profile
