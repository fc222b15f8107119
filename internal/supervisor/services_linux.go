package supervisor

import (
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/ebpfjail/ebpfjail/internal/bpf"
	"github.com/ebpfjail/ebpfjail/internal/dns"
	"github.com/ebpfjail/ebpfjail/internal/proxy"
)

// services are what a jail needs running before its programs are loaded.
type services struct {
	dns   *dns.Shim
	proxy *proxy.Proxy
	objs  *bpf.Objects
	// loaded is objs once they exist: the listeners run before the object
	// is loaded (it needs their ports), and any local process can connect.
	loaded atomic.Pointer[bpf.Objects]
	splice *kernelSplice
}

func (s *services) origDst(peer netip.AddrPort) (bpf.Origin, error) {
	objs := s.loaded.Load()
	if objs == nil {
		return bpf.Origin{}, bpf.ErrNoOrigDst
	}
	return objs.OrigDst(peer)
}

func (s *services) socketOrigin(cookie uint64) (bpf.Origin, error) {
	objs := s.loaded.Load()
	if objs == nil {
		return bpf.Origin{}, bpf.ErrNoOrigDst
	}
	return objs.SocketOrigin(cookie)
}

// close stops the listeners and waits for their connections' handlers,
// which may still have an event to write; it may be called twice.
func (s *services) close() {
	if s.proxy != nil {
		s.proxy.Close()
		s.proxy = nil
	}
	if s.dns != nil {
		s.dns.Close()
		s.dns = nil
	}
	if s.objs != nil {
		s.objs.Close()
		s.objs = nil
	}
	s.splice.close()
}

// startServices starts the DNS shim and the proxy, then loads the BPF
// object, which steers to their ports.
func startServices(c Config, log *slog.Logger, prep *bpf.Prepared) (*services, error) {
	s := &services{splice: &kernelSplice{log: log.With("component", "splice")}}
	upstream := c.DNSUpstream
	if upstream == "" {
		var err error
		if upstream, err = dns.SystemUpstream("/etc/resolv.conf"); err != nil {
			upstream = "127.0.0.1:53" // glibc's default without a nameserver line
			log.Debug("no nameserver in /etc/resolv.conf", "err", err, "upstream", upstream)
		}
	}
	dcfg := dns.Config{
		Upstream:     upstream,
		Logger:       log.With("component", "dns"),
		SocketOrigin: s.socketOrigin,
		Events:       c.Event,
		Secrets:      c.Secrets,
	}
	var synthetic *dns.Synthetic
	if c.FakeDNS && c.DNSUpstream != "" {
		c.Warn("--dns-upstream has no effect with --dns fake (nothing is forwarded); add --dns forward")
	}
	if c.FakeDNS {
		synthetic = dns.NewSynthetic()
		dcfg.Fake = synthetic
	} else {
		dcfg.Rules = c.Rules
	}
	var err error
	if s.dns, err = dns.Listen(dcfg); err != nil {
		return nil, &Error{Step: StepServices, Err: err}
	}
	pcfg := proxy.Config{
		Logger:   log.With("component", "proxy"),
		OrigDst:  s.origDst,
		DNS:      s.dns.ServeConn,
		Rules:    c.Rules,
		CA:       c.CA,
		NoMITM:   c.NoMITM,
		Resolver: &proxy.Resolver{Pins: c.Resolve, LocalNames: c.LocalNames},
		TCP:      c.TCP,
		Events:   c.Event,
		Secrets:  c.Secrets,
	}
	if c.Splice {
		pcfg.Splice = s.splice.join
	}
	if synthetic != nil {
		pcfg.Synthetic = synthetic
	} else {
		pcfg.ResolvedNames = s.dns.Names
	}
	if s.proxy, err = proxy.Listen(pcfg); err != nil {
		s.close()
		return nil, &Error{Step: StepServices, Err: err}
	}
	l4, l6 := s.proxy.Ports()
	d4, d6 := s.dns.Ports()
	if s.objs, err = prep.Load(bpf.Config{ListenPort4: l4, ListenPort6: l6, DNSPort4: d4, DNSPort6: d6}); err != nil {
		s.close()
		return nil, &Error{Step: StepLoad, Err: err}
	}
	s.loaded.Store(s.objs)
	return s, nil
}
