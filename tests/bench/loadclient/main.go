package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// result is the JSON line the harness reads.
type result struct {
	Requests int64   `json:"requests,omitempty"`
	Errors   int64   `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec,omitempty"`
	P50us    float64 `json:"p50_us,omitempty"`
	P99us    float64 `json:"p99_us,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"`
	Held     int     `json:"held,omitempty"`
	// CPUus is this process's user+system time, so the harness can tell
	// the client's share from ebpfjail's.
	CPUus float64 `json:"cpu_us"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadclient rate|get|hold [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	rawURL := fs.String("url", "", "URL to GET")
	connect := fs.String("connect", "", "host:port every connection dials")
	workers := fs.Int("c", 1, "concurrent workers (rate)")
	dur := fs.Duration("d", time.Second, "how long to send (rate)")
	newConn := fs.Bool("new", false, "a new connection per request (rate)")
	n := fs.Int("n", 1000, "connections to hold (hold), bytes to read (tcpget)")
	proxy := fs.String("proxy", "", "an explicit HTTP proxy URL (CONNECT for https)")
	sync := fs.Bool("sync", false, "print \"ready\", wait for a line on stdin, measure, print the result, wait for stdin to close")
	fs.Parse(os.Args[2:])
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" || (*connect == "" && *proxy == "") {
		fmt.Fprintln(os.Stderr, "loadclient: -url and -connect (or -proxy) are required")
		os.Exit(2)
	}
	var px *url.URL
	if *proxy != "" {
		if px, err = url.Parse(*proxy); err != nil || px.Host == "" {
			fmt.Fprintln(os.Stderr, "loadclient: bad -proxy", *proxy)
			os.Exit(2)
		}
	}
	d := dialer{connect: *connect, proxy: px}
	stdin := bufio.NewReader(os.Stdin)
	if *sync {
		// The harness reads the proxy's CPU time between these two points.
		fmt.Println("ready")
		stdin.ReadString('\n')
	}
	cpu0 := cpuUS()
	res, err := run(os.Args[1], u, d, *workers, *dur, *newConn, *n)
	if err != nil {
		res.Errors, res.FirstErr = 1, err.Error()
	}
	res.CPUus = cpuUS() - cpu0
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	if (os.Args[1] == "hold" || *sync) && err == nil {
		// The harness measures the proxy now; it closes stdin when done.
		io.Copy(io.Discard, stdin)
	}
	if res.Errors > 0 {
		os.Exit(1)
	}
}

func run(mode string, u *url.URL, d dialer, workers int, dur time.Duration, newConn bool, n int) (result, error) {
	switch mode {
	case "rate":
		return rate(u, d, workers, dur, newConn), nil
	case "get":
		return get(u, d), nil
	case "hold":
		return hold(u, d, n)
	case "tcpget":
		return tcpGet(u, d, int64(n)), nil
	}
	fmt.Fprintln(os.Stderr, "loadclient: unknown mode", mode)
	os.Exit(2)
	return result{}, nil
}

func cpuUS() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// dialer is where connections go: every one to connect, or to an explicit
// proxy.
type dialer struct {
	connect string
	proxy   *url.URL
}

func (d dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if d.proxy == nil {
		addr = d.connect
	}
	return nd.DialContext(ctx, "tcp", addr)
}

// transport is a plain client transport (HTTP/1.1: the rows are about
// connections, and h2 would fold 32 workers into one) that dials connect.
func transport(d dialer, keepAlive bool, conns int) *http.Transport {
	var proxy func(*http.Request) (*url.URL, error)
	if d.proxy != nil {
		proxy = http.ProxyURL(d.proxy)
	}
	return &http.Transport{
		Proxy: proxy,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.dial(ctx, addr)
		},
		// Not nil: a non-nil empty map turns HTTP/2 off.
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
}

func rate(u *url.URL, d dialer, workers int, dur time.Duration, newConn bool) result {
	tr := transport(d, !newConn, workers)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int64
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(dur)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var bad int64
			var why string
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := fetch(client, u.String())
				if err != nil {
					bad++
					if why == "" {
						why = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			if firstErr == "" {
				firstErr = why
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	res := result{Requests: int64(len(lat)), Errors: errs, FirstErr: firstErr, Seconds: secs}
	if len(lat) > 0 {
		res.PerSec = float64(len(lat)) / secs
		res.P50us = float64(lat[len(lat)/2].Nanoseconds()) / 1e3
		res.P99us = float64(lat[(len(lat)*99)/100].Nanoseconds()) / 1e3
	}
	return res
}

// fetch GETs u and reads the whole body; anything but a 200 is an error.
func fetch(c *http.Client, u string) error {
	resp, err := c.Get(u)
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

func get(u *url.URL, d dialer) result {
	tr := transport(d, false, 1)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	start := time.Now()
	resp, err := client.Get(u.String())
	if err != nil {
		return result{Errors: 1, FirstErr: err.Error()}
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	secs := time.Since(start).Seconds()
	res := result{Requests: 1, Bytes: n, Seconds: secs, PerSec: float64(n) / secs}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		res.Errors, res.FirstErr = 1, err.Error()
	}
	return res
}

// hold opens n connections and makes one request on each, so each is a
// live, idle keep-alive connection at the other end. They are dialed 50 at
// a time: a thousand handshakes at once would only measure the accept
// queue.
func hold(u *url.URL, d dialer, n int) (result, error) {
	start := time.Now()
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, 50)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openOne(u, d)
			if err != nil {
				errc <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errc)
	res := result{Seconds: time.Since(start).Seconds()}
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	for _, c := range conns {
		if c != nil {
			res.Held++
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("%d of %d connections failed: %w", len(errs), n, errs[0])
	}
	return res, nil
}

func openOne(u *url.URL, d dialer) (net.Conn, error) {
	c, err := d.dial(context.Background(), d.connect)
	if d.proxy != nil {
		c, err = d.dial(context.Background(), d.proxy.Host)
	}
	if err != nil {
		return nil, err
	}
	target := u.RequestURI()
	switch {
	case d.proxy != nil && u.Scheme == "https":
		if err := connectTunnel(c, u.Hostname()+":443"); err != nil {
			c.Close()
			return nil, err
		}
	case d.proxy != nil:
		target = u.String()
	}
	if u.Scheme == "https" {
		tc := tls.Client(c, &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = errors.New(resp.Status)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// connectTunnel asks the proxy on c for a tunnel to hostport.
func connectTunnel(c net.Conn, hostport string) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport)
	// One byte at a time: what follows the head belongs to TLS.
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 8192 {
			return fmt.Errorf("connect %s: response head too long", hostport)
		}
		if _, err := c.Read(b); err != nil {
			return fmt.Errorf("connect %s: %w", hostport, err)
		}
		head = append(head, b[0])
	}
	if f := strings.Fields(string(head)); len(f) < 2 || f[1] != "200" {
		return fmt.Errorf("connect %s: %q", hostport, strings.SplitN(string(head), "\r\n", 2)[0])
	}
	return nil
}

// tcpGet asks the raw TCP byte server at u's host for n bytes ("BYTES n"
// and a newline: a protocol that is neither HTTP nor TLS) and reads them;
// bytes/s.
func tcpGet(u *url.URL, d dialer, n int64) result {
	start := time.Now()
	c, err := d.dial(context.Background(), u.Host)
	if err != nil {
		return result{Errors: 1, FirstErr: err.Error()}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := fmt.Fprintf(c, "BYTES %d\n", n); err != nil {
		return result{Errors: 1, FirstErr: err.Error()}
	}
	got, err := io.Copy(io.Discard, c)
	secs := time.Since(start).Seconds()
	res := result{Requests: 1, Bytes: got, Seconds: secs, PerSec: float64(got) / secs}
	if err == nil && got != n {
		err = fmt.Errorf("got %d of %d bytes", got, n)
	}
	if err != nil {
		res.Errors, res.FirstErr = 1, err.Error()
	}
	return res
}
