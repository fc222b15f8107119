// Command holdconns opens many HTTP/1.1 keep-alive connections, makes one
// request on each and holds them all open, in steps a test drives through
// stdin, so the test can measure the proxy in between:
//
//	holdconns N ADDR...
//
// It prints "ready" and waits for a line; opens N connections round-robin
// over the ADDRs (host:port), each answering 200 to a GET, and prints
// "open N"; waits for a line, closes them all and prints "closed"; waits
// for a line (or EOF) and exits. Any failure prints "error ..." and exits 1.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// workers bounds the connections being set up at once (the listen backlog
// and the proxy's upstream dials stay small); all of them stay open.
const workers = 64

func main() {
	// The test asks ebpfjail for stats with SIGUSR1, which ebpfjail also
	// passes on to the command.
	signal.Ignore(syscall.SIGUSR1)
	if len(os.Args) < 3 {
		fail("usage: holdconns N ADDR...")
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fail("bad N %q", os.Args[1])
	}
	addrs := os.Args[2:]
	in := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	in.ReadString('\n')

	conns := make([]net.Conn, n)
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := request(addrs[i%len(addrs)])
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	start := time.Now()
feed:
	for i := range n {
		select {
		case jobs <- i:
		case err := <-errs:
			fail("%v", err)
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		fail("%v", err)
	default:
	}
	fmt.Printf("open %d in %v\n", n, time.Since(start).Round(time.Millisecond))
	in.ReadString('\n')

	for _, c := range conns {
		c.Close()
	}
	fmt.Println("closed")
	in.ReadString('\n')
}

// request connects to addr, GETs / with keep-alive and returns the open
// connection once a 200 and its whole body have arrived.
func request(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(c, "GET /hold HTTP/1.1\r\nHost: %s\r\n\r\n", hostHeader(host)); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("got %d, %v; want 200", resp.StatusCode, err)
	}
	if resp.Close {
		c.Close()
		return nil, fmt.Errorf("the server closes the connection; want keep-alive")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func hostHeader(host string) string {
	if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
		return "[" + host + "]"
	}
	return host
}

func fail(format string, args ...any) {
	fmt.Printf("error "+format+"\n", args...)
	os.Exit(1)
}
