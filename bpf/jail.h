/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C<->Go ABI of ebpfjail. bpf2go generates the Go side of every struct
 * here (-type ...); internal/bpf has a test that pins their sizes, so a change
 * in one place without the other fails the build's tests, not a jail.
 *
 * Byte order is part of every field's name or comment: the kernel hands
 * sock_addr programs addresses and ports in network order, but sockops gives
 * local_port in host order.
 */
#ifndef EBPFJAIL_JAIL_H
#define EBPFJAIL_JAIL_H

#include <linux/types.h>

/* One exec of the jail: the process that exec'd and when (bpf_ktime_get_ns).
 * It names the program image a process runs; a forked child that did not
 * exec runs its parent's, and shares its exec_id. ns 0: none known. */
struct exec_id {
	__u32 tgid;
	__u32 pad;
	__u64 ns;
};

/* sun_path of a struct sockaddr_un. */
#define UNIX_PATH_MAX 108

/* Size of the path kept per exec; a longer path is cut (and says so). */
#define PROC_EXE_MAX 256

/* The program an exec loaded, as the exec hook saw it (exe_by_exec). */
struct proc_exe {
	char path[PROC_EXE_MAX]; /* the path the kernel opened (the interpreter
				  * for a #! script), NUL terminated */
	__u32 truncated; /* 1: the path was longer than PROC_EXE_MAX - 1 bytes */
	__u32 pad;
};

/* What connect()/sendmsg() recorded about one socket of the jail. */
struct orig_dst {
	__u32 addr[4];   /* original destination, network order; IPv4 as ::ffff:a.b.c.d */
	__u16 port;      /* original destination port, network order */
	__u16 family;    /* AF_INET (also for v4-mapped IPv6) or AF_INET6 */
	__u32 pid;       /* tgid of the task that called connect() */
	__u32 uid;       /* its real uid */
	__u32 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	char comm[16];   /* its process name (the main thread's comm), NUL padded */
	__u32 ppid;      /* tgid of its real parent at connect() */
	__u32 pad;
	struct exec_id exe; /* the exec whose program it ran at connect(): the
			     * key of its path in exe_by_exec; ns 0 if unknown */
};

/* The jailed client's end of a redirected TCP connection, as the listener
 * sees it in accept()'s peer address. */
struct tuple_key {
	__u32 addr[4];   /* client local address, network order; IPv4 as ::ffff:a.b.c.d */
	__u16 port;      /* client local port, host order */
	__u16 pad;
};

/* Sizes of the variable parts of an exec event; longer values are truncated. */
#define EXEC_FILENAME_MAX 256
#define EXEC_ARGS_MAX 512

/* One successful execve() in the jail, sent through the execs ring buffer. */
struct exec_event {
	__u32 pid;       /* tgid of the task that exec'd (its pid is kept across exec) */
	__u32 ppid;      /* tgid of its real parent */
	__u32 uid;       /* real uid after the exec */
	__u32 args_len;  /* bytes of args filled: the argv strings, each NUL terminated */
	__u32 args_size; /* size of the whole argv block; > args_len when truncated */
	char comm[16];   /* the new comm (basename of the file), NUL padded */
	char filename[EXEC_FILENAME_MAX]; /* the path given to execve, NUL terminated */
	char args[EXEC_ARGS_MAX];
};


/* Key of the unix_deny map: a unix socket address as the kernel reads it,
 * zero padded. A pathname ends at its first NUL (bytes after it are zeroed);
 * an abstract name keeps its leading NUL and every byte of its length, so
 * "\0foo" and "\0foo\0" share a key (the deny covers both). */
struct unix_path {
	char path[UNIX_PATH_MAX];
};

/* Key of the unix_deny_ino map: the inode a unix socket is bound to, as the
 * kernel sees it. dev is the superblock's s_dev in the kernel's internal
 * encoding, MKDEV(major, minor) = major << 20 | minor (not the user space
 * st_dev encoding, see internal/bpf/unix.go); ino is the inode's i_ino. */
struct unix_ino {
	__u64 dev;
	__u64 ino;
};

/* What a refused_event reports: the operation the kernel refused ... */
enum refused_op {
	REFUSED_CONNECT = 1,
	REFUSED_SENDMSG,
	REFUSED_SOCKET,
};

/* ... and which rule refused it. */
enum refused_why {
	REFUSED_UDP = 1,    /* UDP other than DNS (connect4|6, sendmsg4|6) */
	REFUSED_SOCK,       /* a socket other than TCP or UDP (sock_create) */
	REFUSED_UNIX_ADDR,  /* a unix address in unix_deny (connect_unix, sendmsg_unix) */
	REFUSED_UNIX_PEER,  /* reserved: the unix guard (BPF LSM) reports nothing */
	REFUSED_FAMILY,     /* a socket family the seccomp filter refuses */
};

/* One attempt the kernel refused in the jail, sent through the refused ring
 * buffer while a reader is there (refused_events). Inbound packets are not
 * sent one by one: they are counted per source in inbound_by_src. */
struct refused_event {
	__u32 pid;       /* tgid of the caller */
	__u32 ppid;      /* tgid of its real parent */
	__u32 uid;       /* its real uid */
	__u16 op;        /* enum refused_op */
	__u16 why;       /* enum refused_why */
	__u16 family;    /* AF_* of the socket */
	__u16 type;      /* SOCK_* of the socket */
	__u16 proto;     /* its protocol (IPPROTO_*), 0 for the family's default */
	__u16 port;      /* destination port, network order (inet only) */
	__u32 addr[4];   /* destination, network order; IPv4 as ::ffff:a.b.c.d (inet only) */
	__u32 path_len;  /* bytes of path: a unix address (abstract: leading NUL) */
	char comm[16];   /* the process name (main thread's comm), NUL padded */
	__u32 pad;
	struct exec_id exe; /* the exec it ran, as in orig_dst */
	char path[UNIX_PATH_MAX];
};

/* Key of inbound_by_src: where refused inbound packets came from. */
struct inbound_key {
	__u32 addr[4];   /* source address, network order; IPv4 as ::ffff:a.b.c.d */
};

/* Value of inbound_by_src: packets from one source the jail did not take. */
struct inbound_count {
	__u64 packets;
	__u16 proto;     /* IPPROTO_* of the last one */
	__u16 port;      /* its destination port, host order (TCP/UDP), else 0 */
	__u32 pad;
};

/* Indexes of the per-CPU counters in the stats map (`ebpfjail -vv` prints them). */
enum stat_idx {
	STAT_TCP_REDIR,
	STAT_DNS_REDIR,
	STAT_UDP_DENIED,
	STAT_SOCK_DENIED,
	STAT_RECORD_FAILED,
	STAT_TUPLE_FILLED,
	STAT_TUPLE_NOORIG,
	STAT_PEER_REWRITTEN,
	STAT_RECV_REWRITTEN,
	STAT_EXEC_DROPPED,
	STAT_UNIX_DENIED,
	STAT_UNIX_GUARD_DENIED,
	STAT_INBOUND_DROPPED,
	STAT_EXE_UNKNOWN,
	STAT_REFUSED_DROPPED,
	STAT_MAX,
};

#endif
