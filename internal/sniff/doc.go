// Package sniff classifies a TCP connection accepted by the transparent
// listener from its first bytes, without consuming them: a TLS ClientHello
// (its SNI and ALPN offer), an HTTP/1.x request (method, request-target and
// Host header, including CONNECT from a client configured to use a proxy), or
// anything else.
//
// The package owns only the peek: [Peek] reads, classifies and hands back a
// [*Conn] that replays what was read. It makes no decisions: it reports what
// the client sent (an SNI that disagrees with the Host header, an absolute
// URL naming a third host) and leaves judging it to the proxy.
//
// Invariants:
//   - Nothing is consumed: the returned conn yields exactly the bytes read
//     during the peek, then the rest of the connection (the tcpproxy
//     contract: matching may only peek).
//   - Nothing is written to the client. The ClientHello is parsed by
//     crypto/tls (no hand-written TLS parser) running over a read-only conn
//     whose writes are discarded, so the alert it sends when aborted never
//     reaches the wire.
//   - Bounded: at most [MaxPeek] bytes are buffered, whatever the client
//     sends; beyond that the connection is [KindOther]. One deadline covers
//     the whole peek, so a silent client cannot pin the caller's goroutine,
//     and Peek starts no goroutines of its own.
//   - No waiting for more than the classification needs: a first byte that
//     can start neither a TLS handshake record nor an HTTP method is
//     [KindOther] at once, an HTTP request is classified as soon as its header
//     block ends (the body is not awaited), a ClientHello as soon as it is
//     complete.
//   - The read deadline is cleared before Peek returns, error or not.
//
// Deliberate gaps, each classified [KindOther]:
//   - HTTP/2 with prior knowledge (the "PRI * HTTP/2.0" preface, h2c): the
//     proxy has no cleartext h2 path yet.
//   - Requests whose method is not made of upper case letters and '-'
//     (every method in the IANA registry is), HTTP/0.9 request lines (no
//     version), and request lines preceded by empty lines.
//   - ClientHellos or header blocks larger than [MaxPeek], and ClientHellos
//     crypto/tls refuses to parse (SSLv2-compatible hellos, a trailing dot in
//     the SNI, duplicate extensions).
//
// With Encrypted Client Hello the SNI reported is the outer, public name:
// the inner hello is encrypted to a key the jail does not have.
//
// Clients of protocols in which the server speaks first (SMTP, FTP, MySQL,
// and SSH clients that wait for the server's banner) send nothing until the
// deadline: Peek then returns a timeout error together with a usable conn,
// and the caller decides whether to forward it anyway.
//
// The returned [*Conn] keeps splice(2) within reach: it implements
// io.WriterTo and io.ReaderFrom by handing over to the underlying
// *net.TCPConn once the replayed bytes are out, and [Conn.Unwrap] returns
// that conn (the tcpproxy proxyCopy pattern: flush the peeked bytes, then
// unwrap).
package sniff
