//go:build !linux

package proxy

import "net"

// kernelPipe declines: the kernel splice is a Linux sockhash.
func (p *Proxy) kernelPipe(client, up net.Conn, maxUp int64) (sent, recv int64, ok bool) {
	return 0, 0, false
}
