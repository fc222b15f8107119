package proxy

import (
	"errors"
	"io"
	"net"

	"github.com/ebpfjail/ebpfjail/internal/sniff"
)

// SplicedPair is a client socket and its upstream socket joined in the
// kernel (Config.Splice).
type SplicedPair interface {
	// Moved is what the kernel moved: client to upstream, upstream to
	// client.
	Moved() (up, down uint64)
	// Release forgets the pair once both sockets are closed.
	Release()
}

// bareTCP finds the TCP connection under c when every wrapper between is
// one whose unread bytes drainBuffered can take out (a replay buffer);
// nil means c must be copied in user space (TLS, a secret scanner).
func bareTCP(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *sniff.Conn:
			c = v.Unwrap()
		case *prefixConn:
			c = v.Unwrap()
		case *leanRest:
			c = v.Unwrap()
		default:
			return nil
		}
	}
}

// drainBuffered takes out the bytes c's wrappers hold (read off the
// socket, not yet read from c), in the order reading c would give them.
func drainBuffered(c net.Conn) []byte {
	var out []byte
	for {
		switch v := c.(type) {
		case *sniff.Conn:
			for v.Buffered() > 0 {
				b := make([]byte, v.Buffered())
				n, _ := v.Read(b) // a replayed read never blocks
				out = append(out, b[:n]...)
			}
			c = v.Unwrap()
		case *prefixConn:
			out = append(out, v.prefix...)
			v.prefix = nil
			c = v.Unwrap()
		case *leanRest:
			// The lean path's reader read these off c before anything
			// c still holds.
			if n := v.br.Buffered(); n > 0 {
				b, _ := v.br.Peek(n)
				out = append(out, b...)
				v.br.Discard(n)
			}
			c = v.Unwrap()
		default:
			return out
		}
	}
}

// brokenCopy says whether a copy's error is a broken connection (a reset,
// a write to a closed peer) rather than one closed here on purpose.
func brokenCopy(err error) bool {
	return err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, errSecretMisuse)
}
