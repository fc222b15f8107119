// Package rules decides, per request, whether the jail may make it: the
// Engine interface the proxy and the DNS shim call, and its
// implementations. Engines do no network I/O of their own.
package rules
