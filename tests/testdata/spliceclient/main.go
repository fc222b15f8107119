// Command spliceclient drives one byte stream per mode through a jail, to
// a test origin that plays the other end (tests/sockmap_test.go):
//
//	spliceclient WAY ADDR MODE...
//
// WAY is plain (connect to ADDR, host:port), tls:NAME (the same, then TLS
// for NAME, trusting SSL_CERT_FILE) or connect:PROXY (a CONNECT to ADDR
// through PROXY, host:port). Each connection starts with "MODE\n". Modes:
//
//	up-first    send 64 MiB, half-close, then read to EOF
//	down-first  read to EOF, then send 64 MiB and half-close
//	origin-reset  wait for the origin's reset
//	client-reset  reset the connection after 300 ms
//	stream      read what the origin streams until it ends (prints
//	            "streaming" after the first MiB, then "ended HOW")
//
// For each of the first four it prints one line: "MODE sent=SHA recv=SHA"
// (the sha256 of what it sent and received, "-" for none) or "MODE got
// HOW" (reset, eof or the error). It prints "pid PID" first.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

const size = 64 << 20

func main() {
	fmt.Printf("pid %d\n", os.Getpid())
	way, addr := os.Args[1], os.Args[2]
	for _, mode := range os.Args[3:] {
		c, raw, err := open(way, addr)
		if err != nil {
			fmt.Printf("%s got open: %v\n", mode, err)
			continue
		}
		fmt.Println(run(mode, c, raw))
		c.Close()
	}
}

// open connects as WAY says; raw is the TCP connection under c.
func open(way, addr string) (c net.Conn, raw *net.TCPConn, err error) {
	dial := addr
	if p, ok := strings.CutPrefix(way, "connect:"); ok {
		dial = p
	}
	nc, err := net.DialTimeout("tcp", dial, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	raw = nc.(*net.TCPConn)
	c = nc
	if strings.HasPrefix(way, "connect:") {
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
		// Read the answer byte by byte: nothing of the tunnel may be
		// taken with it.
		var head []byte
		b := make([]byte, 1)
		for !strings.HasSuffix(string(head), "\r\n\r\n") {
			if _, err := c.Read(b); err != nil {
				c.Close()
				return nil, nil, fmt.Errorf("CONNECT: %w", err)
			}
			head = append(head, b[0])
		}
		if !strings.Contains(string(head), " 200 ") {
			c.Close()
			return nil, nil, fmt.Errorf("CONNECT: %q", head)
		}
	}
	if name, ok := strings.CutPrefix(way, "tls:"); ok {
		tc := tls.Client(c, &tls.Config{ServerName: name})
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, nil, err
		}
		c = tc
	}
	return c, raw, nil
}

func run(mode string, c net.Conn, raw *net.TCPConn) string {
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(c, mode+"\n"); err != nil {
		return mode + " got " + how(err)
	}
	switch mode {
	case "up-first":
		sent, err := send(c, raw)
		if err != nil {
			return mode + " got send " + how(err)
		}
		recv, err := drain(c)
		if err != nil {
			return mode + " got recv " + how(err)
		}
		return fmt.Sprintf("%s sent=%s recv=%s", mode, sent, recv)
	case "down-first":
		recv, err := drain(c)
		if err != nil {
			return mode + " got recv " + how(err)
		}
		sent, err := send(c, raw)
		if err != nil {
			return mode + " got send " + how(err)
		}
		// The origin closes once it has read everything.
		if _, err := io.Copy(io.Discard, c); err != nil {
			return mode + " got close " + how(err)
		}
		return fmt.Sprintf("%s sent=%s recv=%s", mode, sent, recv)
	case "origin-reset":
		_, err := io.Copy(io.Discard, c)
		return mode + " got " + how(err)
	case "client-reset":
		time.Sleep(300 * time.Millisecond)
		raw.SetLinger(0)
		raw.Close()
		return mode + " got done"
	case "stream":
		return stream(c)
	}
	return mode + " got unknown mode"
}

// send writes 64 MiB of random bytes and half-closes; it returns their
// sha256.
func send(c net.Conn, raw *net.TCPConn) (string, error) {
	h := sha256.New()
	rnd := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for n := 0; n < size; n += len(buf) {
		rnd.Read(buf)
		h.Write(buf)
		if _, err := c.Write(buf); err != nil {
			return "", err
		}
	}
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.CloseWrite(); err != nil {
			return "", err
		}
	} else if err := raw.CloseWrite(); err != nil {
		return "", err
	}
	return sum(h), nil
}

// drain reads to EOF and returns the sha256 of what came.
func drain(c net.Conn) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	if n == 0 {
		return "-", err
	}
	return sum(h), err
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// stream reads until the stream ends, saying when it is under way.
func stream(c net.Conn) string {
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReaderSize(c, 64<<10)
	var n int64
	said := false
	buf := make([]byte, 64<<10)
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if !said && n >= 1<<20 {
			fmt.Println("streaming")
			said = true
		}
		if err != nil {
			return "stream ended " + how(err)
		}
	}
}

// how names the way a connection ended.
func how(err error) string {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	}
	return "error " + err.Error()
}
