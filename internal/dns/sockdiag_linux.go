package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoSocket means sock_diag knows no UDP socket with the asked-for ends:
// the client closed it already, or it does not live in this network
// namespace.
var errNoSocket = errors.New("no such udp socket")

// Layout of the sock_diag messages (linux/inet_diag.h). x/sys/unix has no
// types for them, and they have not changed since Linux 3.3.
const (
	nlmsgHdrLen      = 16 // struct nlmsghdr
	inetDiagReqV2Len = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg

	// Offsets of struct inet_diag_sockid in both the request and the reply.
	reqIDOff = 8
	msgIDOff = 4

	// Within struct inet_diag_sockid; ports and addresses are big endian.
	idSport  = 0
	idDport  = 2
	idSrc    = 4
	idDst    = 20
	idCookie = 40 // __u32[2], low word first, host byte order

	// INET_DIAG_NOCOOKIE: do not check the cookie, it is what we ask for.
	inetDiagNoCookie = ^uint32(0)
)

// diagTimeout bounds the wait for the kernel's answer. It answers at once;
// the bound only keeps a query from hanging on a kernel that does not.
var diagTimeout = unix.Timeval{Sec: 1}

// udpSocketCookie returns the socket cookie of the UDP socket that sent a
// datagram from client to the shim's socket at shim.
//
// The BPF programs record a jailed UDP socket by cookie at connect() or
// sendmsg(), before its source port is bound, so the datagram's source
// address is all the shim has; sock_diag's exact lookup turns it into the
// cookie. A client that used an IPv4-mapped address owns an AF_INET6 socket,
// so a miss among AF_INET sockets is retried among AF_INET6 ones with the
// mapped addresses.
func udpSocketCookie(client, shim netip.AddrPort) (uint64, error) {
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	shim = netip.AddrPortFrom(shim.Addr().Unmap(), shim.Port())
	if client.Addr().Is4() != shim.Addr().Is4() {
		return 0, fmt.Errorf("find udp socket %s: shim address %s is of another family", client, shim)
	}
	if client.Addr().Is6() {
		return diagUDP(unix.AF_INET6, client, shim)
	}
	cookie, err := diagUDP(unix.AF_INET, client, shim)
	if !errors.Is(err, errNoSocket) {
		return cookie, err
	}
	return diagUDP(unix.AF_INET6, mapped(client), mapped(shim))
}

func mapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}

// diagUDP asks the kernel for the UDP socket of family whose local end is
// client and that may receive from shim.
func diagUDP(family uint8, client, shim netip.AddrPort) (uint64, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &diagTimeout); err != nil {
		return 0, fmt.Errorf("set sock_diag timeout: %w", err)
	}

	const seq = 1 // one request per socket: any sequence number will do
	req := make([]byte, nlmsgHdrLen+inetDiagReqV2Len)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	// No NLM_F_DUMP: an exact lookup (udp_dump_one) of one socket.
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], seq)
	r := req[nlmsgHdrLen:]
	r[0] = family
	r[1] = unix.IPPROTO_UDP
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0)) // all states
	// For UDP the kernel reads the ids swapped ("for historical reasons",
	// net/ipv4/udp_diag.c): it looks up the socket that would receive a
	// datagram from idiag_src to idiag_dst. So the source is the shim (the
	// client's peer) and the destination is the client's own end. The other
	// way round finds the shim's socket, which the check below rejects.
	id := r[reqIDOff:]
	binary.BigEndian.PutUint16(id[idSport:], shim.Port())
	binary.BigEndian.PutUint16(id[idDport:], client.Port())
	putAddr(id[idSrc:idSrc+16], family, shim.Addr())
	putAddr(id[idDst:idDst+16], family, client.Addr())
	binary.NativeEndian.PutUint32(id[idCookie:], inetDiagNoCookie)
	binary.NativeEndian.PutUint32(id[idCookie+4:], inetDiagNoCookie)

	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("send sock_diag request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("receive sock_diag reply: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("parse sock_diag reply: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Seq != seq {
			continue
		}
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return 0, errors.New("parse sock_diag reply: short error")
			}
			errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data)))
			if errno == unix.ENOENT {
				return 0, errNoSocket
			}
			return 0, fmt.Errorf("look up udp socket %s: %w", client, errno)
		case unix.SOCK_DIAG_BY_FAMILY:
			return cookieOf(m.Data, client)
		}
	}
	return 0, errors.New("parse sock_diag reply: no answer")
}

func putAddr(dst []byte, family uint8, a netip.Addr) {
	if family == unix.AF_INET {
		b := a.As4()
		copy(dst, b[:])
		return
	}
	b := a.As16()
	copy(dst, b[:])
}

// cookieOf reads the cookie of an inet_diag_msg after checking that the
// socket is the client's: bound to its port, and to its address or to the
// wildcard (an unconnected socket that let the kernel pick the source).
func cookieOf(msg []byte, client netip.AddrPort) (uint64, error) {
	if len(msg) < inetDiagMsgLen {
		return 0, errors.New("parse sock_diag reply: short inet_diag_msg")
	}
	id := msg[msgIDOff:]
	var local netip.Addr
	switch msg[0] {
	case unix.AF_INET:
		local = netip.AddrFrom4([4]byte(id[idSrc : idSrc+4]))
	case unix.AF_INET6:
		local = netip.AddrFrom16([16]byte(id[idSrc : idSrc+16])).Unmap()
	default:
		return 0, fmt.Errorf("parse sock_diag reply: family %d", msg[0])
	}
	port := binary.BigEndian.Uint16(id[idSport:])
	if port != client.Port() || !(local.IsUnspecified() || local == client.Addr().Unmap()) {
		return 0, fmt.Errorf("look up udp socket %s: kernel answered with %s", client, netip.AddrPortFrom(local, port))
	}
	lo := binary.NativeEndian.Uint32(id[idCookie:])
	hi := binary.NativeEndian.Uint32(id[idCookie+4:])
	return uint64(hi)<<32 | uint64(lo), nil
}
