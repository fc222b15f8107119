//go:build linux

package jail

import "golang.org/x/sys/unix"

var (
	nativeABI = syscallABI{audit: unix.AUDIT_ARCH_X86_64, socket: 41, ioUringSetup: 425}
	// int 0x80 from a 64-bit process.
	compatABI = &syscallABI{audit: unix.AUDIT_ARCH_I386, socket: 359, socketcall: 102, ioUringSetup: 425}
)

// x32Bit marks x32 system calls in the native numbering.
const x32Bit = 0x40000000
