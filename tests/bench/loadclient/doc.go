// Command loadclient is the load generator of the side-by-side benchmark
// (tests/bench). It dials directly (Proxy: nil), trusts what SSL_CERT_FILE
// names (Go's system pool honours it; inside ebpfjail that is the injected
// bundle), and prints one JSON line with what it measured.
//
//	loadclient rate -url U -connect ADDR -c N -d DUR [-new]
//	    GET U from N workers for DUR, on a new connection per request (-new)
//	    or on N kept-alive HTTP/1.1 connections; requests/s, p50, p99
//	loadclient get -url U -connect ADDR
//	    GET U once and discard the body; bytes/s
//	loadclient hold -url U -connect ADDR -n N
//	    open N HTTP/1.1 connections, one request on each, print the JSON
//	    line, then keep them open until stdin closes
//	loadclient tcpget -url tcp://HOST:PORT -connect ADDR -n BYTES
//	    send "BYTES n" and a newline (neither HTTP nor TLS) and read the n
//	    bytes the origin's byte server answers; bytes/s
//
// -proxy URL sends every request through an explicit HTTP proxy instead (a
// CONNECT tunnel for https). -sync prints "ready" and waits for a line on
// stdin before it starts, and after its JSON line waits for stdin to close:
// the harness reads the proxy's CPU time from /proc at those two points.
// cpu_us is the client's own CPU time over the measurement.
//
// -connect is where every connection goes whatever U's host is (curl's
// --resolve): the benchmark's names exist only in the test's pins.
package main
