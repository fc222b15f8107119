// Command dockerclient is the static client the --docker-run tests put in
// their image: it GETs each URL, trusting SSL_CERT_FILE as Go does, and
// prints "URL STATUS" or "URL error: ...".
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	c := &http.Client{Timeout: 10 * time.Second}
	code := 0
	for _, u := range os.Args[1:] {
		resp, err := c.Get(u)
		if err != nil {
			fmt.Printf("%s error: %v\n", u, err)
			code = 1
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d\n", u, resp.StatusCode)
	}
	os.Exit(code)
}
