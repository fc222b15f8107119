// Command goclient fetches each URL with a Go client that ignores proxy
// variables (Proxy: nil), as software that dials directly does, and prints
// "status <code> <X-Remote-Addr>" per URL.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for _, u := range os.Args[1:] {
		resp, err := c.Get(u)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println("status", resp.StatusCode, resp.Header.Get("X-Remote-Addr"))
	}
}
