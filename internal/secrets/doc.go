// Package secrets keeps the real values of the operator's credentials out
// of the jail. The jailed command gets a placeholder per secret: random per
// run, the same length and shape as the real value (a well-known prefix such
// as "sk-ant-api03-" kept), so client-side format checks pass. The proxy
// swaps the placeholder for the real value only on requests the rule allowed
// to the secret's hosts (over intercepted TLS, or plain HTTP when the
// operator said so); the placeholder seen anywhere else (another host, a
// DNS name, a raw TCP stream) is misuse and denies what carried it. A real
// value echoed back in a response reaches the client as the placeholder.
//
// The real values live in one mlocked buffer, are never turned into
// long-lived strings and never appear in an error, event or log line; only
// the names and placeholders do.
package secrets
