// Package inns runs a function with its thread in another network
// namespace: how ebpfjail opens its listening sockets inside a container's
// own namespace, where they stay after the thread has switched back.
package inns
