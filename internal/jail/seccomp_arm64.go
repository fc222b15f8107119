//go:build linux

package jail

import "golang.org/x/sys/unix"

var (
	nativeABI = syscallABI{audit: unix.AUDIT_ARCH_AARCH64, socket: 198, ioUringSetup: 425}
	compatABI = &syscallABI{audit: unix.AUDIT_ARCH_ARM, socket: 281, ioUringSetup: 425}
)

const x32Bit = 0
