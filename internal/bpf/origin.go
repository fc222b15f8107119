package bpf

import "net/netip"

// The record's types build on every system (the rest of the package needs
// Linux): the proxy and the DNS shim take them, and the proxy also runs
// where no jail can (--server, --weak).

// Origin is what the kernel recorded when a jailed process called connect()
// or sendmsg(). Every field is as it was at that call, whatever the process
// did afterwards (exit, exec another program).
type Origin struct {
	Dst   netip.AddrPort // where the process wanted to go (IPv4 unmapped)
	PID   uint32         // tgid of the caller
	PPID  uint32         // tgid of its real parent
	UID   uint32         // its real uid
	Comm  string         // its comm (at most 15 bytes; the process may set it)
	Proto uint8          // 6 TCP, 17 UDP
	// Exe is the program the process ran: the file its last execve loaded
	// (for a #! script, the interpreter), by the path the kernel opened it
	// with (absolute after a PATH search; a relative path stays relative;
	// symlinks are not resolved). A forked child that did not exec runs its
	// parent's. Empty unless ExeFrom is ExeKernel.
	Exe string
	// ExeTruncated: the path was longer than Exe can hold (255 bytes) and
	// Exe is its beginning.
	ExeTruncated bool
	ExeFrom      ExeSource
}

// ExeSource says whether the kernel knew Origin.Exe.
type ExeSource uint8

const (
	// ExeUnseen: the kernel saw no exec of the process (the exec hook is
	// not attached, or the process is older than it): Exe is empty, and a
	// caller may look at /proc, knowing it is read later than connect().
	ExeUnseen ExeSource = iota
	// ExeKernel: Exe is what the exec hook recorded.
	ExeKernel
	// ExeForgotten: the kernel knew the exec but had forgotten its path
	// (the per-exec map is an LRU) before it was read. Exe is empty; /proc
	// would tell what the process runs now, not then.
	ExeForgotten
)

func (s ExeSource) String() string {
	switch s {
	case ExeKernel:
		return "kernel"
	case ExeForgotten:
		return "forgotten"
	}
	return "unseen"
}
