// Package ratelog limits runs of similar lines (a Limiter) and log records
// (a slog.Handler): the first few pass, then one summary says how many
// more were held back, so a peer that makes an error happen thousands of
// times (a client resetting HTTP/2 streams) cannot flood the operator's
// terminal.
//
// Lines are similar when they are the same once runs of digits are set
// aside (addresses, ports and counters differ from one line to the next).
package ratelog
