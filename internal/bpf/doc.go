// Package bpf loads ebpfjail's cgroup programs, attaches them to a jail's
// cgroup and answers the one question the listener has for the kernel: where
// did this accepted connection originally want to go, and who asked?
//
// The C side lives in bpf/jail.c; bpf2go compiles it into jail_bpfel.o and
// the bindings in jail_bpfel.go, both committed so building needs no clang.
// This package knows nothing of HTTP, TLS or rules.
//
// The same object carries BTF tracepoints (no tracefs needed) that act for
// the jail's cgroup only and cost every other exec, fork and exit on the
// host one cgroup test (~0.15 us). sched_process_exec keeps, per process,
// the program it exec'd, and reports each exec through a ring buffer while
// watched (WatchExec); sched_process_fork and sched_process_exit keep that
// table for forked children and dead processes. connect() copies the
// process's entry into the socket's record, so Origin names the program
// that connected even if it exited or exec'd before the listener accepted
// (Links.Identity says whether the hooks are attached).
//
// The ingress program (cgroup_skb) lets a socket of the jail receive only
// what came in over loopback: nothing from other hosts (AttachOptions).
//
// Two more are BPF LSM programs, the unix guard (lsm/unix_stream_connect,
// lsm/unix_may_send): attached by Attach, host-wide but acting only for the
// jail's cgroup, they refuse the unix sockets DenyUnix lists after the
// kernel has resolved the address, whatever path reached them. They need a
// kernel with a working BPF LSM; without it a jail runs without them
// (Links.UnixGuard says why).
//
// What the programs refuse (UDP but DNS, sockets but TCP and UDP, unix
// addresses on the deny list, inbound packets) is reported too, as a side
// effect that never changes a verdict: through a second ring buffer while
// watched (WatchRefused), inbound packets as counts per source. Asked to,
// WatchRefused also attaches a syscall exit tracepoint (tp_btf/sys_exit)
// that reports every refused socket() of the jail, also those the kernel
// or the seccomp filter refuses before the socket hook runs; it puts every
// syscall of the host on the slow path while attached (30-50 ns more per
// syscall measured on a 2-vCPU VM, on getppid's ~80), so it is for audits.
//
// Each jail loads its own copy of the object, so jails share no maps and can
// run side by side. The links are pinned in bpffs: if the supervisor dies
// the programs stay attached and keep steering towards its dead listener, so
// the jail fails closed until the pins are removed.
//
// The kernel splice (bpf/splice.c, splice_bpfel.o; Splicer) is an object of
// its own, loaded on first use by a jail run with --kernel-splice and not
// pinned: a sockhash and an sk_skb stream verdict program that move an
// allowed tunnel's bytes between its two sockets (see Splicer.Join for what
// the caller must do around it).
//
// Minimum kernel: 5.8 (cgroup getpeername hooks, bpf_link for cgroups,
// BPF_MAP_LOOKUP_AND_DELETE_ELEM on hash maps needs 5.14). The unix socket
// programs (connect_unix, sendmsg_unix: DenyUnix) need 6.7; an older kernel
// loads and attaches everything else, and Links.Missing names them. The
// unix guard needs CONFIG_BPF_LSM, "bpf" in the active LSM list
// (/sys/kernel/security/lsm) and BPF trampolines (5.7+).
package bpf
