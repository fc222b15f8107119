//go:build linux

package jail

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The cgroup hooks see inet sockets only. Other address families reach
// past them: AF_VSOCK talks to the hypervisor host (unprivileged, on a VM
// with a vsock transport), and TIPC, RDS and friends autoload where their
// modules exist. So the command runs under a seccomp filter that lets
// socket() make only what the jail can steer or what stays on the machine
// (unix, inet, inet6, netlink). io_uring is refused as well: its
// IORING_OP_SOCKET makes sockets without the socket() syscall, where no
// seccomp filter sees the family (Docker's default profile refuses it too).

// allowedFamilies are the socket() domains the command may use.
var allowedFamilies = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// syscallABI is one system call ABI of an architecture: how seccomp names
// it and the numbers that matter here (0: the ABI has no such call).
type syscallABI struct {
	audit        uint32
	socket       uint32
	socketcall   uint32 // the multiplexer of 32-bit x86
	ioUringSetup uint32
}

// seccomp_data offsets.
const (
	offNR   = 0
	offArch = 4
	offArg0 = 16 // low half of args[0] (little endian)
)

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	// socketcall's call number for socket().
	sysSocket = 1
)

func retErrno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

// filterProgram builds the filter for the native ABI and, when the CPU
// runs one, a compat ABI; x32 (a flag bit in the native numbers) is
// refused outright.
func filterProgram(native syscallABI, compat *syscallABI, x32Bit uint32) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	// Each ABI's section ends in returns; the arch dispatch jumps to them.
	section := func(abi syscallABI, x32 uint32) []bpf.Instruction {
		var s []bpf.Instruction
		s = append(s, bpf.LoadAbsolute{Off: offNR, Size: 4})
		if x32 != 0 {
			s = append(s, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32, SkipTrue: 0, SkipFalse: 1},
				bpf.RetConstant{Val: retErrno(unix.ENOSYS)})
		}
		// Checks, each a jump over one return: [jeq nr; skip] ret.
		if abi.ioUringSetup != 0 {
			s = append(s, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: abi.ioUringSetup, SkipTrue: 1},
				bpf.RetConstant{Val: retErrno(unix.EPERM)})
		}
		if abi.socketcall != 0 {
			s = append(s, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: abi.socketcall, SkipTrue: 3},
				bpf.LoadAbsolute{Off: offArg0, Size: 4},
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: sysSocket, SkipTrue: 1},
				// socketcall(SOCKET) hides the family behind a pointer.
				bpf.RetConstant{Val: retErrno(unix.EAFNOSUPPORT)},
				bpf.LoadAbsolute{Off: offNR, Size: 4})
		}
		n := len(allowedFamilies)
		s = append(s, bpf.JumpIf{Cond: bpf.JumpEqual, Val: abi.socket, SkipFalse: uint8(n + 2)},
			bpf.LoadAbsolute{Off: offArg0, Size: 4})
		for i, f := range allowedFamilies {
			s = append(s, bpf.JumpIf{Cond: bpf.JumpEqual, Val: f, SkipTrue: uint8(n - i)})
		}
		s = append(s, bpf.RetConstant{Val: retErrno(unix.EAFNOSUPPORT)},
			bpf.RetConstant{Val: retAllow})
		return s
	}
	nat := section(native, x32Bit)
	var comp []bpf.Instruction
	if compat != nil {
		comp = section(*compat, 0)
	}
	prog = append(prog, bpf.LoadAbsolute{Off: offArch, Size: 4})
	if compat != nil {
		// native? -> nat; compat? -> comp; else refuse.
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: native.audit, SkipTrue: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: compat.audit, SkipTrue: uint8(1 + len(nat) + 0)},
			bpf.RetConstant{Val: retErrno(unix.ENOSYS)})
	} else {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: native.audit, SkipTrue: 1},
			bpf.RetConstant{Val: retErrno(unix.ENOSYS)})
	}
	prog = append(prog, nat...)
	prog = append(prog, comp...)
	if len(prog) > 255 {
		return nil, errors.New("seccomp filter too long for its jumps")
	}
	return bpf.Assemble(prog)
}

// installFilter puts the filter on the calling thread (locked by the
// caller, never to run other goroutines again); children forked from it
// inherit it. no_new_privs must be set first.
func installFilter(raw []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("install seccomp filter: %w", err)
	}
	return nil
}

// socketFilter is the filter for this architecture.
func socketFilter() ([]bpf.RawInstruction, error) {
	if nativeABI.audit == 0 {
		return nil, errors.New("build seccomp filter: no system call table for this architecture")
	}
	return filterProgram(nativeABI, compatABI, x32Bit)
}

// ProbeSeccomp installs the filter on a throwaway thread and checks that it
// holds there (io_uring_setup refused with EPERM), for `ebpfjail check`.
func ProbeSeccomp() error {
	raw, err := socketFilter()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
		if err := installFilter(raw); err != nil {
			done <- err
			return
		}
		// NULL params: without the filter the kernel answers EFAULT.
		_, _, errno := unix.Syscall(uintptr(nativeABI.ioUringSetup), 4, 0, 0)
		if errno != unix.EPERM {
			done <- fmt.Errorf("io_uring_setup under the filter: got %v, want EPERM", errno)
			return
		}
		done <- nil
	}()
	return <-done
}
