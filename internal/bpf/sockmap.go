//go:build linux

package bpf

import (
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// NoSpliceEnv, set to 1 in ebpfjail's environment, makes LoadSplicer fail
// as a kernel that refuses the program would: the tests use it to run the
// user-space copy that replaces the kernel splice. Nothing else reads it.
const NoSpliceEnv = "EBPFJAIL_TEST_NO_SOCKMAP"

// spliceSndBuf is a joined socket's send buffer (see Join).
const spliceSndBuf = 16 << 20

// Splicer is the kernel splice (bpf/splice.c): a sockhash with a stream
// verdict program that moves every byte a member socket receives to its
// peer's send queue, so an allowed tunnel's bytes never reach ebpfjail.
// One serves every jail of a process; nothing of it is pinned, so it ends
// with the process, and a member socket leaves it when it closes.
type Splicer struct {
	objs spliceObjects
}

// LoadSplicer loads the program and attaches it to its sockhash. An error
// means the kernel refused (or NoSpliceEnv): connections are then copied
// in user space.
func LoadSplicer() (*Splicer, error) {
	if os.Getenv(NoSpliceEnv) == "1" {
		return nil, fmt.Errorf("load kernel splice: turned off by %s=1", NoSpliceEnv)
	}
	s := &Splicer{}
	if err := loadSpliceObjects(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load kernel splice: %w", err)
	}
	err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  s.objs.SpliceSocks.FD(),
		Program: s.objs.SpliceVerdict,
		Attach:  ebpf.AttachSkSKBStreamVerdict,
	})
	if err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("attach kernel splice verdict: %w", err)
	}
	return s, nil
}

// Close releases the map and the program; pairs still joined fall apart
// (their sockets keep whatever they had queued).
func (s *Splicer) Close() error { return s.objs.Close() }

// SplicePair is two sockets joined by Join.
type SplicePair struct {
	s       *Splicer
	cookies [2]uint64
}

// Join makes the kernel move what a receives to b and what b receives to
// a. Both must be connected TCP sockets with no byte read off them that
// the peer still needs (the caller writes those first). Bytes that arrive
// while the two are added one after the other are left to the socket they
// came in on (see bpf/splice.c): the caller keeps reading both sockets and
// writes what it reads to the other, which also tells it of each EOF.
func (s *Splicer) Join(a, b *net.TCPConn) (*SplicePair, error) {
	conns := [2]*net.TCPConn{a, b}
	cookies, err := socketCookies(conns)
	if err != nil {
		return nil, err
	}
	p := &SplicePair{s: s, cookies: cookies}
	for i, c := range cookies {
		side := spliceSpliceSide{Peer: cookies[1-i]}
		if err := s.objs.SplicePeers.Update(c, side, ebpf.UpdateNoExist); err != nil {
			p.Release()
			return nil, fmt.Errorf("join sockets in the kernel splice: %w", err)
		}
	}
	for i, c := range cookies {
		err := control(conns[i], func(fd int) error {
			return s.objs.SpliceSocks.Update(c, uint64(fd), ebpf.UpdateNoExist)
		})
		if err != nil {
			p.Release()
			return nil, fmt.Errorf("join sockets in the kernel splice: %w", err)
		}
	}
	// What arrived before a socket joined waits in its receive queue until
	// the kernel next sees data arrive; setting SO_RCVLOWAT (to its
	// default) makes it look now, so the program takes those bytes too.
	//
	// A redirect that finds the peer's send buffer full is retried a
	// jiffy later (4 ms at HZ=250): a larger buffer makes that rarer
	// (loopback, 64 MiB: ~480 to ~800 MB/s). It is a ceiling, not memory
	// taken; failing to raise it costs only speed.
	for _, c := range conns {
		control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, spliceSndBuf) })
		control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1) })
	}
	return p, nil
}

// Moved is what the kernel moved: from a to b and from b to a (Join's
// order), counted as the program redirected it. Read it before Release.
func (p *SplicePair) Moved() (ab, ba uint64) {
	var n [2]uint64
	for i, c := range p.cookies {
		var side spliceSpliceSide
		if p.s.objs.SplicePeers.Lookup(c, &side) == nil {
			n[i] = side.Redirected
		}
	}
	return n[0], n[1]
}

// Release forgets the pair. Call it once both sockets are closed: a socket
// still open that leaves the sockhash loses what the kernel queued on it.
func (p *SplicePair) Release() {
	for _, c := range p.cookies {
		// Not there is fine: a closed socket leaves the sockhash itself.
		p.s.objs.SpliceSocks.Delete(c)
		p.s.objs.SplicePeers.Delete(c)
	}
}

// socketCookies returns the socket cookies of conns.
func socketCookies(conns [2]*net.TCPConn) (cookies [2]uint64, err error) {
	for i, c := range conns {
		err = control(c, func(fd int) error {
			var err error
			cookies[i], err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
			return err
		})
		if err != nil {
			return cookies, fmt.Errorf("read socket cookie: %w", err)
		}
	}
	return cookies, nil
}

// control runs f on c's descriptor.
func control(c *net.TCPConn, f func(fd int) error) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
