//go:build linux

package attack

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring, enough for one IORING_OP_CONNECT: io_uring runs the
// connect in the kernel on the caller's behalf, a path a socket filter on
// the connect() syscall would not see. (The cgroup hooks sit below both.)

var errNoRing = errors.New("io_uring refused")

const (
	sysIOUringSetup = 425
	sysIOUringEnter = 426

	opConnect             = 16
	enterGetEvents        = 1
	offSQRing             = 0
	offCQRing             = 0x8000000
	offSQEs               = 0x10000000
	sqeSize               = 64
	cqeSize               = 16
	ringEntries    uint32 = 4
)

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  ringOffsets
	cqOff                                                                  ringOffsets
}

// ringOffsets is io_sqring_offsets / io_cqring_offsets: the same shape.
// For the completion ring the sixth field is cqes and the seventh flags.
type ringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqes is the completion ring's offset of its entries.
func (o ringOffsets) cqes() uint32 { return o.dropped }

// ringConnect connects fd to ap through io_uring.
func ringConnect(fd int, ap netip.AddrPort) error {
	var p uringParams
	rfd, _, errno := unix.Syscall(sysIOUringSetup, uintptr(ringEntries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return fmt.Errorf("%w: io_uring_setup: %s", errNoRing, errText(errno))
	}
	defer unix.Close(int(rfd))
	sqLen := int(p.sqOff.array + p.sqEntries*4)
	cqLen := int(p.cqOff.cqes() + p.cqEntries*cqeSize)
	sq, err := unix.Mmap(int(rfd), offSQRing, sqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap sq ring: %w", err)
	}
	defer unix.Munmap(sq)
	cq, err := unix.Mmap(int(rfd), offCQRing, cqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap cq ring: %w", err)
	}
	defer unix.Munmap(cq)
	sqes, err := unix.Mmap(int(rfd), offSQEs, int(p.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap sqes: %w", err)
	}
	defer unix.Munmap(sqes)

	sa, salen := rawSockaddr(ap)
	// SQE 0: opcode, fd, addr = sockaddr, off (addr2) = its length.
	for i := range sqes[:sqeSize] {
		sqes[i] = 0
	}
	sqes[0] = opConnect
	*(*int32)(unsafe.Pointer(&sqes[4])) = int32(fd)
	*(*uint64)(unsafe.Pointer(&sqes[8])) = uint64(salen)
	*(*uint64)(unsafe.Pointer(&sqes[16])) = uint64(uintptr(unsafe.Pointer(&sa[0])))
	*(*uint64)(unsafe.Pointer(&sqes[32])) = 1 // user_data

	tail := (*uint32)(unsafe.Pointer(&sq[p.sqOff.tail]))
	mask := *(*uint32)(unsafe.Pointer(&sq[p.sqOff.ringMask]))
	t := atomic.LoadUint32(tail)
	*(*uint32)(unsafe.Pointer(&sq[p.sqOff.array+4*(t&mask)])) = 0
	atomic.StoreUint32(tail, t+1)

	_, _, errno = unix.Syscall6(sysIOUringEnter, rfd, 1, 1, enterGetEvents, 0, 0)
	runtime.KeepAlive(sa)
	if errno != 0 {
		return fmt.Errorf("io_uring_enter: %w", errno)
	}
	head := (*uint32)(unsafe.Pointer(&cq[p.cqOff.head]))
	cmask := *(*uint32)(unsafe.Pointer(&cq[p.cqOff.ringMask]))
	h := atomic.LoadUint32(head)
	if h == atomic.LoadUint32((*uint32)(unsafe.Pointer(&cq[p.cqOff.tail]))) {
		return errors.New("io_uring: no completion")
	}
	res := *(*int32)(unsafe.Pointer(&cq[p.cqOff.cqes()+cqeSize*(h&cmask)+8]))
	atomic.StoreUint32(head, h+1)
	if res < 0 {
		return unix.Errno(-res)
	}
	return nil
}

// rawSockaddr is struct sockaddr_in / sockaddr_in6 for ap.
func rawSockaddr(ap netip.AddrPort) ([]byte, int) {
	port := ap.Port()
	if ap.Addr().Is4() {
		b := make([]byte, unix.SizeofSockaddrInet4)
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET
		b[2], b[3] = byte(port>>8), byte(port)
		a := ap.Addr().As4()
		copy(b[4:], a[:])
		return b, len(b)
	}
	b := make([]byte, unix.SizeofSockaddrInet6)
	*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET6
	b[2], b[3] = byte(port>>8), byte(port)
	a := ap.Addr().As16()
	copy(b[8:], a[:])
	return b, len(b)
}
