// Command exhaust puts load on the proxy from inside a jail, in steps a
// test drives through stdin, so the test can measure ebpfjail in between.
// Each line is one command:
//
//	get URL                   GET URL; print "status CODE" or "error ..."
//	flood URL N               N workers GET URL over and over until stop;
//	                          print "flooding"
//	hold URL CONNS STREAMS    open CONNS HTTP/2 connections to URL's host
//	                          and start STREAMS GETs on each, kept open
//	                          until stop; print "held H" once the number of
//	                          answered streams H stops growing
//	stop                      end the flood or the held streams; print
//	                          "stopped" and what the requests got
//	exit                      exit
//
// URLs are https (trusting SSL_CERT_FILE) or http.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// load is the background work of one flood or hold.
type load struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	outcomes map[string]int
	answered atomic.Int64
}

func (l *load) record(what string) {
	l.mu.Lock()
	l.outcomes[what]++
	l.mu.Unlock()
}

func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, v := range l.outcomes {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func main() {
	// The test asks ebpfjail for stats with SIGUSR1, which ebpfjail also
	// passes on to the command.
	signal.Ignore(syscall.SIGUSR1)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var cur *load
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 4<<20)
	fmt.Println("ready")
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "get" && len(f) == 2:
			fmt.Println(get(client, context.Background(), f[1]))
		case f[0] == "flood" && len(f) == 3:
			n, _ := strconv.Atoi(f[2])
			cur = flood(f[1], n)
			fmt.Println("flooding")
		case f[0] == "hold" && len(f) == 4:
			conns, _ := strconv.Atoi(f[2])
			streams, _ := strconv.Atoi(f[3])
			cur = hold(f[1], conns, streams)
			fmt.Println("held", cur.answered.Load(), cur.summary())
		case f[0] == "stop" && cur != nil:
			cur.cancel()
			cur.wg.Wait()
			fmt.Println("stopped", cur.summary())
			cur = nil
		case f[0] == "exit":
			return
		default:
			fmt.Println("error bad command", in.Text())
		}
	}
}

// get makes one request and reads its body to the end.
func get(c *http.Client, ctx context.Context, u string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "error " + err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return "error " + oneLine(err.Error())
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "error body: " + oneLine(err.Error())
	}
	return "status " + strconv.Itoa(resp.StatusCode)
}

func oneLine(s string) string {
	if len(s) > 200 {
		s = s[:100] + "..." + s[len(s)-100:]
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// brief is an error's text, short and without spaces, for the summary.
func brief(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return strings.ReplaceAll(s, " ", "_")
}

// outcome shortens get's answer for the summary.
func outcome(s string) string {
	if strings.HasPrefix(s, "status ") {
		return s[len("status "):]
	}
	return "error"
}

func flood(u string, n int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, outcomes: map[string]int{}}
	// One connection per worker: the flood is n requests at once.
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: n}}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				s := get(c, ctx, u)
				if ctx.Err() == nil {
					l.record(outcome(s))
				}
			}
		}()
	}
	return l
}

func hold(u string, conns, streams int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, outcomes: map[string]int{}}
	pu, err := url.Parse(u)
	if err != nil {
		l.record("bad-url")
		return l
	}
	// Strict: wait for the server's SETTINGS and a free slot rather than
	// fail a request over the limit (or over 100 before SETTINGS).
	tr := &http2.Transport{StrictMaxConcurrentStreams: true}
	for range conns {
		raw, err := net.DialTimeout("tcp", net.JoinHostPort(pu.Hostname(), "443"), 10*time.Second)
		if err != nil {
			l.record("dial-error")
			continue
		}
		tc := tls.Client(raw, &tls.Config{ServerName: pu.Hostname(), NextProtos: []string{"h2"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			l.record("tls-error")
			raw.Close()
			continue
		}
		cc, err := tr.NewClientConn(tc)
		if err != nil {
			l.record("h2-error")
			tc.Close()
			continue
		}
		go func() {
			<-ctx.Done()
			cc.Close()
		}()
		for range streams {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				resp, err := cc.RoundTrip(req)
				if err != nil {
					if ctx.Err() == nil {
						l.record("error(" + brief(err) + ")")
					}
					return
				}
				l.answered.Add(1)
				l.record(strconv.Itoa(resp.StatusCode))
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
	}
	// Settled: nothing new answered for two seconds (streams over the
	// server's limit wait for a slot that never frees).
	last, still := int64(-1), 0
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		n := l.answered.Load()
		if n == last {
			still++
			if still >= 8 {
				break
			}
			continue
		}
		last, still = n, 0
	}
	return l
}
