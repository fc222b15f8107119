package supervisor

import (
	"log/slog"
	"net"
	"sync"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
)

// kernelSplice is a jail's kernel splice (bpf.Splicer), loaded when the
// first tunnel asks for it: a jail that never opens one pays nothing.
type kernelSplice struct {
	log  *slog.Logger
	once sync.Once
	mu   sync.Mutex
	s    *bpf.Splicer
	err  error
}

// join is proxy.Config.Splice.
func (k *kernelSplice) join(client, up *net.TCPConn) (proxy.SplicedPair, error) {
	k.once.Do(func() {
		s, err := bpf.LoadSplicer()
		k.mu.Lock()
		k.s, k.err = s, err
		k.mu.Unlock()
		if err != nil {
			k.log.Warn("kernel splice unavailable: allowed tunnels are copied through ebpfjail (splice(2))", "err", err)
		}
	})
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s == nil {
		if k.err == nil {
			return nil, net.ErrClosed
		}
		return nil, k.err
	}
	p, err := k.s.Join(client, up)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// close releases the splice, after the proxy's connections are done.
func (k *kernelSplice) close() {
	if k == nil {
		return
	}
	k.once.Do(func() {}) // none loaded after this
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s != nil {
		k.s.Close()
		k.s = nil
	}
}

// probeSplice loads the kernel splice and joins a loopback connection's
// two ends in it, as a tunnel would be.
func probeSplice() error {
	s, err := bpf.LoadSplicer()
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer ln.Close()
	d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return err
	}
	defer d.Close()
	a, err := ln.AcceptTCP()
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := s.Join(d, a)
	if err != nil {
		return err
	}
	p.Release()
	return nil
}
