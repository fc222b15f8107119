// Command killload keeps HTTP traffic going through a jail while the test
// kills ebpfjail, then reports what got through after the kill:
//
//	killload ADDR
//
// It prints "pid PID", holds 50 keep-alive connections to ADDR (host:port)
// after one GET /hold each, and runs 16 workers that each open a new
// connection per request for GET /slow (a body the origin sends in slow
// pieces), so requests are always in flight. When all that runs it prints
// "loaded" and waits for a line on stdin: the test's word that ebpfjail is
// dead. Then, for 2 s, the workers go on with new connections for
// /after-new, each held connection sends GET /after-held, and it prints
//
//	after new-ok=N new-fail=N held-ok=N held-fail=N inflight-ok=N inflight-fail=N
//
// where inflight counts the /slow requests that were under way at the kill
// and ended after it. Then it waits (for --cleanup to kill it).
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	held    = 50
	workers = 16
)

var (
	addr   string
	killed atomic.Bool
	counts struct {
		sync.Mutex
		newOK, newFail, inflightOK, inflightFail, slowOK int
	}
)

func main() {
	if len(os.Args) != 2 {
		fmt.Println("error usage: killload ADDR")
		os.Exit(1)
	}
	addr = os.Args[1]
	fmt.Println("pid", os.Getpid())
	in := bufio.NewReader(os.Stdin)

	conns := make([]net.Conn, 0, held)
	for i := range held {
		c, err := dial()
		if err == nil {
			err = get(c, fmt.Sprintf("/hold?i=%d", i))
		}
		if err != nil {
			fmt.Println("error holding a connection:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(w, stop)
		}()
	}
	for {
		counts.Lock()
		n := counts.slowOK
		counts.Unlock()
		if n >= workers {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("loaded")
	in.ReadString('\n')
	killed.Store(true)

	var heldOK, heldFail atomic.Int32
	var hw sync.WaitGroup
	for i, c := range conns {
		hw.Add(1)
		go func() {
			defer hw.Done()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if get(c, fmt.Sprintf("/after-held?i=%d", i)) == nil {
				heldOK.Add(1)
			} else {
				heldFail.Add(1)
			}
		}()
	}
	hw.Wait()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	counts.Lock()
	fmt.Printf("after new-ok=%d new-fail=%d held-ok=%d held-fail=%d inflight-ok=%d inflight-fail=%d\n",
		counts.newOK, counts.newFail, heldOK.Load(), heldFail.Load(), counts.inflightOK, counts.inflightFail)
	counts.Unlock()
	in.ReadString('\n')
}

// work makes one request per new connection until stop: /slow before the
// kill, /after-new after it.
func work(w int, stop chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		before := !killed.Load()
		path := fmt.Sprintf("/slow?w=%d&i=%d", w, i)
		if !before {
			path = fmt.Sprintf("/after-new?w=%d&i=%d", w, i)
		}
		c, err := dial()
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			err = get(c, path)
			c.Close()
		}
		after := killed.Load()
		counts.Lock()
		switch {
		case !before && err == nil:
			counts.newOK++
		case !before:
			counts.newFail++
		case after && err == nil:
			counts.inflightOK++
		case after:
			counts.inflightFail++
		case err == nil:
			counts.slowOK++
		}
		counts.Unlock()
		if err != nil && !before {
			time.Sleep(20 * time.Millisecond) // refused at once: do not spin
		}
	}
}

func dial() (net.Conn, error) { return net.DialTimeout("tcp", addr, 3*time.Second) }

// get sends GET path on c (keep-alive) and reads a whole 200 response.
func get(c net.Conn, path string) error {
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
