package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"sync"
)

var discardLog = log.New(io.Discard, "", 0)

// cutBody records why an upstream response body ended early, for the
// request's event: ReverseProxy only aborts the client's connection.
type cutBody struct {
	io.ReadCloser
	reason *string
	ctx    context.Context
	watch  *upstreamWatch
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.watch.touch()
	}
	if err != nil && err != io.EOF && *b.reason == "" {
		if errors.Is(context.Cause(b.ctx), errUpstreamIdle) {
			*b.reason = fmt.Sprintf("response body cut short: nothing from upstream for %v", b.watch.idle)
		} else {
			*b.reason = "response body cut short: " + err.Error()
		}
	}
	return n, err
}

// copyBuffers recycles the ReverseProxy's body copy buffers: without a
// pool it allocates 32 KiB per request, 71% of the bytes a kept-alive
// request allocated, and the GC work that comes with them.
var copyBuffers httputil.BufferPool = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// newForwarder proxies requests to where their forward says. Known-length
// bodies are buffered by the server's writer and flushed when it fills or
// the response ends (FlushInterval 0: a flush per write cost a syscall and
// a TLS record each); the ReverseProxy still flushes every write of a body
// of unknown length and of text/event-stream, so streams and long polls
// are not held back.
func newForwarder(t *http.Transport) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			fw := forwardOf(pr.In.Context())
			pr.Out.URL.Scheme = fw.scheme
			pr.Out.URL.Host = fw.hostport
			// Keep the client's Host (checked against the target above).
			pr.Out.Host = pr.In.Host
		},
		Transport:  t,
		BufferPool: copyBuffers,
		ErrorLog:   discardLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			fw := forwardOf(r.Context())
			if errors.Is(context.Cause(r.Context()), errUpstreamIdle) {
				uw, _ := r.Context().Value(watchKey{}).(*upstreamWatch)
				msg := fmt.Sprintf("no response from upstream for %v", uw.idle)
				if fw != nil {
					fw.err = msg
				}
				writeText(w, http.StatusGatewayTimeout, "Upstream error: "+msg+"\n")
				return
			}
			if fw != nil {
				fw.err = err.Error()
			}
			if refuseLocal(w, fw, err) || refuseBodyMisuse(w, fw) {
				return
			}
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			writeText(w, http.StatusBadGateway, "Upstream error: "+err.Error()+"\n")
		},
		ModifyResponse: func(res *http.Response) error {
			ctx := res.Request.Context()
			watch, _ := ctx.Value(watchKey{}).(*upstreamWatch)
			if res.StatusCode == http.StatusSwitchingProtocols {
				watch.halt() // cancelling the request would close the upgraded connection
				if fw := forwardOf(ctx); fw != nil && fw.tx != nil {
					if up, ok := res.Body.(io.ReadWriteCloser); ok {
						res.Body = fw.tx.wrapUpgraded(up)
					}
				}
			}
			watch.touch()
			// Not a 101: ReverseProxy needs the upgraded body's own type
			// (and an upgraded connection is a tunnel, no longer watched).
			if fw := forwardOf(ctx); fw != nil && res.StatusCode != http.StatusSwitchingProtocols {
				res.Body = &cutBody{ReadCloser: res.Body, reason: &fw.err, ctx: ctx, watch: watch}
			}
			if fw := forwardOf(ctx); fw != nil && fw.secrets != nil {
				return fw.secrets.Response(res)
			}
			return nil
		},
	}
}
