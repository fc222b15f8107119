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
// Where it looks: request header values (Basic credentials decoded), header
// names, the URL's path and query (as is and percent-encoded), the Host,
// request bodies (streamed, whole), DNS names (case folded, dots ignored,
// any 20 characters of the placeholder in a row) and the first 64 KiB of a
// --tcp stream. Not inside other encodings a client could make up (hex,
// base64 outside Basic, a compressed request body), the frames of an
// upgraded connection (a WebSocket client masks them anyway), or request
// trailers: the placeholder is a tripwire, and the real value, which never
// enters the jail, is what is protected.
//
// Responses: only a host a secret belongs to can know its value, so only
// its responses are redacted (headers, body and trailers); it is asked for identity encoding, gzip is
// decoded if it sends that anyway, and any other encoding is refused.
//
// The real values live in one locked, non-dumped mapping, the process is
// made non-dumpable, and they are never turned into long-lived strings nor
// written to an error, event or log line; only names and placeholders are.
package secrets
