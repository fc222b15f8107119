package dns

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

// served is a TCP connection being served. The shim keys its set by this
// pointer rather than by the net.Conn, whose dynamic type need not be
// comparable.
type served struct{ c net.Conn }

// ServeConn serves DNS over TCP on c, an accepted connection whose client is
// the process who (a zero Origin means the process is unknown). It reads
// length-prefixed messages (RFC 7766), several per connection, answers each
// over the same connection, possibly out of order, and returns when the
// client closes c, stays idle for too long, or the shim is closed.
// ServeConn owns c and closes it before it returns.
func (s *Shim) ServeConn(c net.Conn, who origin.Origin) {
	sc, ok := s.track(c)
	if !ok {
		c.Close()
		return
	}
	defer s.untrack(sc)

	known := who != (origin.Origin{})
	co := &dns.Conn{Conn: c}
	var (
		wmu      sync.Mutex // one answer on the wire at a time
		inflight sync.WaitGroup
		tokens   = make(chan struct{}, maxPipelined)
	)
	// Answers in flight are written (or fail) before c is closed.
	defer inflight.Wait()
	for {
		if err := c.SetReadDeadline(time.Now().Add(tcpIdleTimeout)); err != nil {
			return
		}
		var hdr dns.Header
		raw, err := co.ReadMsgHeader(&hdr)
		if errors.Is(err, dns.ErrShortRead) {
			// Shorter than a header: there is no ID to answer to. The
			// length prefix was honoured, so the stream is still in step.
			s.malformed.Add(1)
			s.log.Debug("malformed dns query", "net", "tcp", "error", err)
			continue
		}
		if err != nil {
			return // closed, reset, idle or cut short: nothing more to read
		}
		req, reply := decodeQuery(raw, hdr)
		if req == nil && reply == nil {
			continue
		}
		if reply != nil {
			s.malformed.Add(1)
			s.log.Debug("malformed dns query", "net", "tcp", "bytes", len(raw), "rcode", rcodeString(reply.Rcode))
		}
		tokens <- struct{}{}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-tokens }()
			resp := reply
			if resp == nil {
				resp = s.respond(s.ctx, &query{msg: req, net: "tcp", who: who, known: known})
			}
			wmu.Lock()
			defer wmu.Unlock()
			c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
			if err := co.WriteMsg(resp); err != nil {
				// A connection that takes no answers is finished; closing
				// it also ends the read loop.
				s.log.Debug("write dns answer", "net", "tcp", "error", err)
				c.Close()
			}
		}()
	}
}

// decodeQuery parses a message read from a TCP connection with the rules the
// miekg/dns UDP server applies (DefaultMsgAcceptFunc), so both transports
// accept and reject the same queries. It returns the query to answer, or the
// rejection to send, or neither when the message is to be ignored (a
// response: answering it could start a loop).
func decodeQuery(raw []byte, hdr dns.Header) (req, reject *dns.Msg) {
	m := new(dns.Msg)
	// Unpack sets the header before it parses the rest, so even a message
	// whose body is garbage carries the ID and opcode a rejection needs.
	err := m.Unpack(raw)
	action := dns.DefaultMsgAcceptFunc(hdr)
	switch {
	case action == dns.MsgAccept && err == nil:
		return m, nil
	case action == dns.MsgIgnore:
		return nil, nil
	}
	reject = new(dns.Msg)
	reject.SetRcodeFormatError(m)
	if action == dns.MsgRejectNotImplemented {
		reject.Opcode = m.Opcode
		reject.Rcode = dns.RcodeNotImplemented
	}
	return nil, reject
}

// track registers a connection to be closed by Close; it fails once the
// shim is closed.
func (s *Shim) track(c net.Conn) (*served, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	sc := &served{c: c}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	return sc, true
}

func (s *Shim) untrack(sc *served) {
	s.mu.Lock()
	delete(s.conns, sc) // a no-op on the nil map Close leaves
	s.mu.Unlock()
	sc.c.Close()
	s.wg.Done()
}
