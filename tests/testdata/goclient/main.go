// Command goclient is a Go client that ignores proxy variables
// (Proxy: nil), as software that dials directly does.
//
//	goclient URL...      GET each URL; print "status <code> <X-Remote-Addr>" and the body
//	goclient ws URL      WebSocket echo: send a line, print what comes back
//	goclient resolve NAME  look NAME up with Go's own resolver; print the addresses
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "ws" {
		wsEcho(os.Args[2])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "resolve" {
		r := &net.Resolver{PreferGo: true}
		addrs, err := r.LookupHost(context.Background(), os.Args[2])
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("resolved", strings.Join(addrs, " "))
		return
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for _, u := range os.Args[1:] {
		resp, err := c.Get(u)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println("status", resp.StatusCode, resp.Header.Get("X-Remote-Addr"))
		fmt.Print(string(body))
	}
}

func wsEcho(u string) {
	origin := "http://" + strings.SplitN(strings.SplitN(u, "://", 2)[1], "/", 2)[0]
	ws, err := websocket.Dial(u, "", origin)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	defer ws.Close()
	websocket.Message.Send(ws, "ping-over-websocket")
	var got string
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	if err := websocket.Message.Receive(ws, &got); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("echo", got)
}
