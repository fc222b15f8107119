package dns

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ebpfjail/ebpfjail/internal/origin"
)

// FuzzServeConn feeds arbitrary bytes to the DNS-over-TCP path: ServeConn
// must neither panic nor hang once the client is gone.
func FuzzServeConn(f *testing.F) {
	up := startUpstream(f)
	s, _ := newShim(f, up.addr, nil, time.Second)

	query := mustPack(f, newQuery("fuzz.test.", dns.TypeA))
	edns := newQuery("edns.test.", dns.TypeAAAA)
	edns.SetEdns0(4096, true)
	f.Add(framed(query))
	f.Add(append(framed(query), framed(mustPack(f, edns))...))
	f.Add(framed(query[:len(query)-2]))
	f.Add(framed(query)[:5])
	f.Add(framed(mustPack(f, &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7}})))
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xde, 0xad})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(server, origin.Origin{PID: 1, Comm: "fuzz"})
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn hung on %q", data)
		}
	})
}
