//go:build linux

package jail

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The isolation layer: a Landlock domain on the command. Any Landlock
// domain limits the ptrace family (ptrace, process_vm_readv/writev,
// /proc/PID/mem and /environ, pidfd_getfd: everything that asks
// ptrace_may_access) to processes in the same or a nested domain, so the
// jailed tree cannot reach the user's unjailed processes nor ebpfjail's rule
// programs, while its own processes can still debug each other. The scopes
// (ABI 6, Linux 6.12) add signals and abstract unix sockets: the jail cannot
// signal anything outside, nor connect to an abstract socket created outside.
//
// This holds for every uid, root included: --user root keeps the same domain
// (ptrace, process memory, pidfd_getfd, signals and abstract sockets stay
// refused). A jailed root keeps what Landlock does not cover: it can leave
// (write its pid into another cgroup.procs, detach the BPF pins, read the CA
// key), and with CAP_SYS_ADMIN or CAP_PERFMON the kernel lets it read
// /proc/PID/environ and /proc/PID/maps of processes outside without asking
// Landlock (seen on Linux 6.18). --user root is a jail for programs that
// need root, not against them.

// landlockABIScopes is the first ABI with LANDLOCK_SCOPE_*.
const landlockABIScopes = 6

// landlockAttr is struct landlock_ruleset_attr up to scoped: passing only
// the fields this code knows keeps older kernels (which reject a larger
// struct with non-zero unknown fields) out of the question.
type landlockAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

// Isolation says which parts of the isolation layer this kernel has.
type Isolation struct {
	// ABI is the Landlock ABI version, 0 when Landlock is unavailable
	// (not built, not in the lsm= list, or disabled).
	ABI int
	// Err is why ABI is 0.
	Err error
}

// ProbeIsolation asks the kernel for its Landlock ABI.
func ProbeIsolation() Isolation {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return Isolation{Err: fmt.Errorf("landlock: %w", errno)}
	}
	return Isolation{ABI: int(v)}
}

// Ptrace reports whether the jail is kept from ptrace-family access to
// processes outside it.
func (i Isolation) Ptrace() bool { return i.ABI >= 1 }

// Scopes reports whether signals and abstract unix sockets can be scoped.
func (i Isolation) Scopes() bool { return i.ABI >= landlockABIScopes }

// Layers describes what holds and what is missing, for check and -v. With
// openAbstract the abstract unix scope is left off on purpose.
func (i Isolation) Layers(openAbstract bool) (held, missing []string) {
	if !i.Ptrace() {
		return nil, []string{
			fmt.Sprintf("Landlock (%v): the jail can ptrace, read the memory and environment of, take descriptors from and signal the user's processes outside it, rule programs included", i.Err),
		}
	}
	held = append(held, fmt.Sprintf("Landlock ABI %d: no ptrace, memory, environ or pidfd_getfd access to processes outside the jail", i.ABI))
	if !i.Scopes() {
		missing = append(missing, fmt.Sprintf("Landlock scopes (ABI %d < 6, Linux 6.12): the jail can signal processes outside it and connect to abstract unix sockets bound outside it", i.ABI))
		return held, missing
	}
	held = append(held, "Landlock signal scope: no signals to processes outside the jail")
	if openAbstract {
		held = append(held, "abstract unix sockets by name (--allow-unix @NAME; the Landlock scope is off, it has no per-name exception): only the listed names are reachable, the jail's own included (cgroup unix hooks)")
	} else {
		held = append(held, "Landlock abstract unix socket scope: no connections to abstract sockets bound outside the jail")
	}
	return held, missing
}

// restrictSelf puts the calling thread (and whatever it forks from now on)
// in a new Landlock domain that handles no file or network access, only
// the scopes the kernel has. It must run on a locked OS thread after
// no_new_privs, and after any mount changes (a domain forbids them). It
// returns nil on a kernel without Landlock: the caller reports the layer
// missing (ProbeIsolation).
func restrictSelf(iso Isolation, openAbstract bool) error {
	if !iso.Ptrace() {
		return nil
	}
	var attr landlockAttr
	size := unsafe.Sizeof(attr)
	if iso.Scopes() {
		attr.scoped = unix.LANDLOCK_SCOPE_SIGNAL
		if !openAbstract {
			attr.scoped |= unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
		}
	} else {
		// Before scopes a ruleset must handle something: creating block
		// devices is nothing a jailed program does (and needs CAP_MKNOD).
		// Sized to the first field, which every ABI knows.
		attr.handledFS = unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK
		size = unsafe.Sizeof(attr.handledFS)
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("create landlock ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("enter landlock domain: %w", errno)
	}
	return nil
}
