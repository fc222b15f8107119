package dns

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ErrNoNameserver means a resolv.conf names no usable nameserver.
var ErrNoNameserver = errors.New("no nameserver")

// SystemUpstream returns the first nameserver of the resolv.conf at path as
// "ip:53" ("[ip]:53" for IPv6, zone kept), for use as [Config.Upstream].
// Lines that do not parse are skipped, as the C library does. A loopback
// nameserver (systemd-resolved's 127.0.0.53) is fine: ebpfjail runs outside
// the jail, so its queries are not steered back to the shim.
func SystemUpstream(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read resolver config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue // blank, comment (# or ;), or another option
		}
		addr, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		return netip.AddrPortFrom(addr, 53).String(), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read resolver config %s: %w", path, err)
	}
	return "", fmt.Errorf("read resolver config %s: %w", path, ErrNoNameserver)
}
