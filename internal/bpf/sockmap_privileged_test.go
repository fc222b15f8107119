//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.AcceptTCP()
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

// plainReader hides ReadFrom/WriteTo so reads are read(2), not splice(2).
type plainReader struct{ io.Reader }

// TestPrivilegedSplicerMovesBytesAndReportsEOF joins two loopback sockets,
// as the proxy does with a client and its upstream: what either far end
// sends arrives at the other, counted, and a half-close is seen by a
// read on the joined socket.
func TestPrivilegedSplicerMovesBytesAndReportsEOF(t *testing.T) {
	s, err := LoadSplicer()
	if err != nil {
		t.Fatalf("LoadSplicer: %v", err)
	}
	defer s.Close()
	client, proxyIn := tcpPair(t)
	proxyOut, origin := tcpPair(t)
	// Bytes sent before the join wait in the receive queue: the join must
	// take them too.
	client.Write([]byte("early "))
	time.Sleep(10 * time.Millisecond)
	p, err := s.Join(proxyIn, proxyOut)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	defer p.Release()
	up := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		client.Write(up)
		client.CloseWrite()
	}()
	origin.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 6+len(up))
	if _, err := io.ReadFull(origin, buf); err != nil {
		t.Fatalf("origin read: %v", err)
	}
	if !bytes.Equal(buf, append([]byte("early "), up...)) {
		t.Fatalf("origin got different bytes")
	}
	// The client's FIN: the joined socket reads EOF (and nothing else).
	proxyIn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(plainReader{proxyIn})
	if err != nil || len(rest) != 0 {
		t.Fatalf("joined socket after the client's FIN: got %d bytes, %v; want EOF", len(rest), err)
	}
	// Nothing broke on the upstream side (a redirected FIN must not).
	proxyOut.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := proxyOut.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("upstream socket after the client's FIN: got %d bytes, %v; want nothing (a timeout)", n, err)
	}
	origin.Write([]byte("reply"))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "reply" {
		t.Fatalf("client read: %q, %v", got, err)
	}
	ab, ba := p.Moved()
	if ab != uint64(6+len(up)) || ba != 5 {
		t.Errorf("Moved: got %d, %d; want %d, 5", ab, ba, 6+len(up))
	}
}
