package sniff

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// Conn is the connection Peek returns: reads first replay the bytes Peek
// read, then continue on the underlying conn. Everything else (writes,
// deadlines, addresses, Close) goes straight to the underlying conn.
//
// Reads may not run concurrently with each other (as with any net.Conn
// reader); a writer may run alongside a reader, which is what a proxy's two
// copy directions do.
//
// Conn keeps zero-copy forwarding available: [Conn.WriteTo] writes the
// replay bytes and then hands over to the underlying conn, and
// [Conn.ReadFrom] is the underlying conn's, so io.Copy between a Conn over a
// *net.TCPConn and another *net.TCPConn uses splice(2) in both directions
// once the replay bytes are out. [Conn.Unwrap] gives the underlying conn
// itself, for callers that need its type.
type Conn struct {
	net.Conn

	peeked []byte // bytes read by Peek and not yet read back
}

// Read replays the peeked bytes, then reads from the underlying conn. It
// never mixes the two in one call, so a replayed read never blocks.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.peeked) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.peeked)
	c.peeked = c.peeked[n:]
	if len(c.peeked) == 0 {
		c.peeked = nil // let the buffer go
	}
	return n, nil
}

// Buffered is how many peeked bytes are still to be read back.
func (c *Conn) Buffered() int { return len(c.peeked) }

// Unwrap returns the underlying conn. Reading from it directly skips the
// peeked bytes not yet read back: do so only once [Conn.Buffered] is zero.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// WriteTo writes the peeked bytes to w, then copies the underlying conn to
// w until EOF. With both ends TCP that second part is a splice(2): io.Copy
// asks the *net.TCPConn, not the Conn wrapper that would force a copy
// through user space.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.peeked) > 0 {
		m, err := w.Write(c.peeked)
		n += int64(m)
		c.peeked = c.peeked[m:]
		if len(c.peeked) == 0 {
			c.peeked = nil
		}
		if err != nil {
			return n, err
		}
	}
	m, err := io.Copy(w, c.Conn)
	return n + m, err
}

// ReadFrom copies r to the underlying conn until EOF, through its own
// ReadFrom when it has one (*net.TCPConn does: splice(2) from another TCP
// conn). The peeked bytes are on the read side and play no part.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	// Hide Conn's own ReadFrom from io.Copy, which would call it again.
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite shuts down the writing side of the underlying conn (a TCP
// half-close), so the peer reads EOF while replies can still arrive.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("close write on %T: %w", c.Conn, errors.ErrUnsupported)
}

// CloseRead shuts down the reading side of the underlying conn. Peeked
// bytes not read back yet can still be read.
func (c *Conn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return fmt.Errorf("close read on %T: %w", c.Conn, errors.ErrUnsupported)
}
