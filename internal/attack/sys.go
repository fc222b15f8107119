//go:build linux

package attack

import "github.com/cilium/ebpf/link"

// detachPin opens a pinned link and detaches it.
func detachPin(path string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Detach()
}
