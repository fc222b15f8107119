package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// kernelPipe is pipe with the bytes moved by the kernel (Config.Splice):
// once client and up are joined, ebpfjail only waits for each side's end.
// It declines (ok false, nothing touched) when a limit applies, when no
// splice is configured, or when a wrapper must see the bytes; if the
// kernel refuses the join, it copies in user space as pipe does.
//
// The counts are what was written upstream and to the client: the bytes
// the wrappers held, what the kernel redirected (counted by the program as
// it redirects, so a byte redirected to a socket that then broke counts),
// and what went through ebpfjail's own copy.
func (p *Proxy) kernelPipe(client, up net.Conn, maxUp int64) (sent, recv int64, ok bool) {
	if p.cfg.Splice == nil || maxUp > 0 {
		return 0, 0, false
	}
	ct, ut := bareTCP(client), bareTCP(up)
	if ct == nil || ut == nil {
		return 0, 0, false
	}
	// What the wrappers read off a socket goes to the other before the
	// join, so the kernel cannot overtake it.
	toUp, toClient := drainBuffered(client), drainBuffered(up)
	if err := writeBoth(ut, toUp, ct, toClient); err != nil {
		reset(ct)
		reset(ut)
		return 0, 0, true
	}
	// The kernel hands the program whole socket buffers, even one that a
	// read here consumed in part (it would send that part again): empty
	// both receive queues first. What arrives after comes in fresh buffers.
	up0, upEnd := drainSocket(ct, ut)
	down0, downEnd := drainSocket(ut, ct)
	sent, recv = int64(len(toUp))+up0, int64(len(toClient))+down0
	// What was written to each before the join: the kernel's bytes come on
	// top (see joinedSide).
	base := [2]uint64{written(ct), written(ut)}
	var pair SplicedPair
	var err error
	if !upEnd && !downEnd {
		pair, err = p.cfg.Splice(ct, ut)
	}
	if pair == nil {
		if err != nil {
			p.cfg.Logger.Debug("kernel splice refused: copying in user space", "err", err)
		}
		s, r, _ := pipe(ct, ut, 0)
		return sent + s, recv + r, true
	}
	p.cfg.Logger.Debug("tunnel joined in the kernel splice", "client", ct.RemoteAddr(), "upstream", ut.RemoteAddr())
	var userDown int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		userDown = joinedSide(ut, ct, base[0], func() uint64 { _, d := pair.Moved(); return d })
	}()
	userUp := joinedSide(ct, ut, base[1], func() uint64 { u, _ := pair.Moved(); return u })
	wg.Wait()
	ct.Close()
	ut.Close()
	kUp, kDown := pair.Moved()
	pair.Release()
	return sent + userUp + int64(kUp), recv + userDown + int64(kDown), true
}

// drainSocket copies what src has received to dst without waiting for
// more; end says src is at its end (EOF or an error), or dst broke.
func drainSocket(src, dst *net.TCPConn) (n int64, end bool) {
	raw, err := src.SyscallConn()
	if err != nil {
		return 0, true
	}
	buf := make([]byte, 256<<10)
	for {
		var r int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			r, rerr = unix.Read(int(fd), buf)
			return true // never wait
		}); err != nil {
			return n, true
		}
		if rerr == unix.EAGAIN {
			return n, false
		}
		if rerr != nil || r <= 0 {
			return n, true
		}
		w, err := dst.Write(buf[:r])
		n += int64(w)
		if err != nil {
			return n, true
		}
	}
}

// writeBoth writes a to ac and b to bc.
func writeBoth(ac *net.TCPConn, a []byte, bc *net.TCPConn, b []byte) error {
	if len(a) > 0 {
		if _, err := ac.Write(a); err != nil {
			return err
		}
	}
	if len(b) > 0 {
		if _, err := bc.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// joinedSide serves one direction of a joined pair, src to dst: it copies
// what the kernel left on src (see internal/bpf's Join) and, at src's EOF,
// waits until dst's peer has acknowledged every byte written to dst (base
// before the join, the copy, and what the kernel moved: moved), then
// half-closes dst. A broken src or dst resets both; a socket closed here
// (the idle watch) closes both. It returns the bytes it copied.
func joinedSide(src, dst *net.TCPConn, base uint64, moved func() uint64) int64 {
	n, err := copyPlain(dst, src)
	if err != nil {
		if brokenCopy(err) {
			// What src sent before it broke still reaches dst (briefly
			// waited for), then the reset does.
			waitAcked(dst, base+uint64(n)+moved(), time.Now().Add(resetGrace))
			reset(src)
			reset(dst)
		} else {
			src.Close()
			dst.Close()
		}
		return n
	}
	waitAcked(dst, base+uint64(n)+moved(), time.Time{})
	dst.CloseWrite()
	return n
}

// copyPlain copies src to dst with read(2) and write(2).
func copyPlain(dst, src *net.TCPConn) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return n, nil
			}
			return n, rerr
		}
	}
}

// written is how many bytes were ever written to c: acknowledged, plus
// still in its send queue. Read twice around the queue, as an ACK may
// land between the two calls.
func written(c *net.TCPConn) uint64 {
	var total uint64
	control(c, func(fd int) {
		for range 100 {
			a1, ok1 := bytesAcked(fd)
			q, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
			a2, ok2 := bytesAcked(fd)
			if !ok1 || !ok2 || err != nil {
				return
			}
			if a1 == a2 {
				total = a1 + uint64(q)
				return
			}
		}
	})
	return total
}

// resetGrace bounds how long a side that broke waits for its last bytes
// to reach the other side before resetting it.
const resetGrace = time.Second

// waitAcked waits until c's peer has acknowledged want bytes, or c can no
// longer send (closed, reset, or its peer gone), or deadline (if not zero)
// passes.
func waitAcked(c *net.TCPConn, want uint64, deadline time.Time) {
	pause := 50 * time.Microsecond
	for deadline.IsZero() || time.Now().Before(deadline) {
		done := true
		control(c, func(fd int) {
			info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil || info.Bytes_acked >= want {
				return
			}
			// Only these states still send data (BPF_TCP_* are the
			// kernel's TCP states).
			done = info.State != unix.BPF_TCP_ESTABLISHED && info.State != unix.BPF_TCP_CLOSE_WAIT
		})
		if done {
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// bytesAcked reads TCP_INFO's bytes_acked.
func bytesAcked(fd int) (uint64, bool) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, false
	}
	return info.Bytes_acked, true
}

// control runs f on c's descriptor; a closed c runs nothing.
func control(c *net.TCPConn, f func(fd int)) {
	if raw, err := c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { f(int(fd)) })
	}
}
