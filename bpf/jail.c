// SPDX-License-Identifier: GPL-2.0
/*
 * ebpfjail: cgroup programs that steer every socket of the jail into ebpfjail.
 *
 *   cgroup/connect4|6      TCP -> 127.0.0.1:listen_port4 / [::1]:listen_port6
 *                          (v4-mapped -> ::ffff:127.0.0.1:listen_port4);
 *                          UDP :53 -> the DNS shim; any other UDP -> EPERM
 *   cgroup/sendmsg4|6      unconnected UDP: :53 -> the DNS shim, others -> EPERM
 *   cgroup/recvmsg4|6      the shim's replies appear to come from the server asked
 *   cgroup/getpeername4|6  the child sees the peer it asked for
 *   sockops                on ACTIVE_ESTABLISHED, re-key the record by the client's
 *                          (address, port) so the listener finds it from accept()
 *   cgroup/sock_create     only TCP and UDP inet sockets (no raw, ICMP, SCTP, MPTCP)
 *   cgroup/sock_release    drop the socket's record (UDP never reaches sockops)
 *   cgroup_skb/ingress     inbound: only packets that came in over loopback
 *                          reach a socket of the jail (its own connections
 *                          to ebpfjail, the host's own clients); the rest,
 *                          from other hosts, is dropped
 *   cgroup/connect_unix    unix sockets: connect() and sendto() to an address in
 *   cgroup/sendmsg_unix    unix_deny -> EPERM (Linux 6.7+; optional, see load.go)
 *
 * and two kinds of host-wide programs that act only for tasks in the jail's
 * cgroup (the jail_cgroup map):
 *
 *   lsm/unix_stream_connect  the unix guard: once the kernel has resolved the
 *   lsm/unix_may_send        address to a socket, a peer bound to an inode in
 *                          unix_deny_ino, or whose bound name is in unix_deny,
 *                          -> EPERM (BPF LSM; optional, see load.go)
 *   tp_btf/sched_process_exec  one exec_event per successful execve() of a
 *                          task in the jail's cgroup, into the execs ring
 *                          buffer; and the program it loaded, per process,
 *                          for connect() to record (process identity)
 *   tp_btf/sched_process_fork  a new process runs its parent's program
 *   tp_btf/sched_process_exit  forget a process that is gone
 *
 * Everything here fails closed: a socket whose record cannot be stored is
 * refused, and because the links are pinned, a dead supervisor leaves the
 * rewrite in place towards a port nobody listens on (connection refused).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "jail.h"

char LICENSE[] SEC("license") = "GPL";

/* Not from sys/socket.h: glibc's headers do not build for the bpf target. */
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define AF_INET 2
#define AF_INET6 10

#define EPERM 1

#define LOOPBACK4 0x7f000001U /* 127.0.0.1, host order */
#define DNS_PORT 53

/* Set by internal/bpf before the object is loaded; host byte order. */
volatile const __u16 listen_port4 = 0;
volatile const __u16 listen_port6 = 0;
volatile const __u16 dns_port4 = 0;
volatile const __u16 dns_port6 = 0;

/* One record per socket, from connect()/sendmsg() until the socket is released. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, struct orig_dst);
} orig_by_cookie SEC(".maps");

/* The same record keyed by the client's end of the TCP connection; the
 * listener looks it up and deletes it after accept(). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tuple_key);
	__type(value, struct orig_dst);
} orig_by_tuple SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		(*v)++;
}

static __always_inline int is_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

/* Just the fields we read; CO-RE relocates them against the running
 * kernel's BTF at load time. */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct signal_struct {
	struct {
		int counter;
	} live; /* threads of the process not yet exiting */
} __attribute__((preserve_access_index));

struct task_struct {
	struct task_struct *group_leader;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct signal_struct *signal;
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
	const char *interp;
} __attribute__((preserve_access_index));

/* ---------------- process identity ---------------- */

/*
 * Who connected is recorded at connect(), in the socket's record, so it is
 * still right when the process has exited or exec'd something else by the
 * time the listener accepts. comm, uid and the parent come from the task;
 * the program (exe) from the exec hook, which keeps the path each exec of
 * the jail loaded under the exec's id (exe_by_exec), and which exec each
 * process runs (exec_of_tgid; a forked child inherits its parent's). The
 * record holds only the 16-byte exec id: the paths are kept once per exec,
 * not once per socket.
 *
 * Both maps are LRU. exec_of_tgid is cleaned at process exit; exe_by_exec
 * is not (a record may still name an exec whose processes are all gone) and
 * forgets the execs least used: connect() and fork() touch the entry they
 * use. A record whose exec was forgotten has an exe the listener cannot
 * find, and says so.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, struct exec_id);
} exec_of_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct exec_id);
	__type(value, struct proc_exe);
} exe_by_exec SEC(".maps");

/* identify_task fills in who is calling (process tgid): its parent and the
 * exec it runs. */
static __always_inline void identify_task(__u32 tgid, __u32 *ppid, struct exec_id *exe)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_id *id;

	*ppid = BPF_CORE_READ(task, real_parent, tgid);
	id = bpf_map_lookup_elem(&exec_of_tgid, &tgid);
	if (!id) {
		stat_inc(STAT_EXE_UNKNOWN);
		return;
	}
	*exe = *id;
	/* Touch it: the LRU keeps the execs that connect. */
	bpf_map_lookup_elem(&exe_by_exec, id);
}

static __always_inline void identify(struct orig_dst *o)
{
	identify_task(o->pid, &o->ppid, &o->exe);
}

/* leader_comm copies the process's name (its main thread's comm): the
 * calling thread's own comm can be a worker's ("isc-net-0000" in dig). */
static __always_inline void leader_comm(char *comm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	if (!leader || bpf_probe_read_kernel(comm, 16, &leader->comm))
		bpf_get_current_comm(comm, 16);
}

/* record stores who is connecting where under the socket's cookie.
 * Returns 0 when the record could not be stored: the caller then refuses
 * the socket, since a connection the listener cannot attribute is useless. */
static __always_inline int record(struct bpf_sock_addr *ctx, struct orig_dst *o)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);

	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->proto = ctx->protocol;
	leader_comm(o->comm);
	identify(o);
	if (bpf_map_update_elem(&orig_by_cookie, &cookie, o, BPF_ANY)) {
		stat_inc(STAT_RECORD_FAILED);
		return 0;
	}
	return 1;
}

/* ---------------- refused events ---------------- */

/*
 * What the programs below refuse (EPERM) is also reported, as a side effect:
 * one refused_event per attempt into the refused ring buffer, while a reader
 * is there (refused_events, set by internal/bpf). The verdict never depends
 * on the event: a full buffer drops the event and counts it
 * (STAT_REFUSED_DROPPED), the reader reports the count. A flood costs one
 * reserve per attempt and at most the buffer's bytes.
 */
const struct refused_event *const refused_event_type __attribute__((unused)) = 0;

#define REFUSED_RING_BYTES (64 * 1024) /* ~330 events of 192 (+8) bytes */
#define REFUSED_WAKEUP_BYTES (REFUSED_RING_BYTES / 4)

volatile __u32 refused_events = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REFUSED_RING_BYTES);
} refused SEC(".maps");

/* refused_begin reserves and fills an event with the caller (a task of the
 * jail: every hook that calls it runs in the refused task's context).
 * NULL: no reader, or no room (counted). */
static __always_inline struct refused_event *refused_begin(__u16 op, __u16 why, __u16 family, __u16 type,
							   __u16 proto)
{
	struct refused_event *e;

	if (!refused_events)
		return NULL;
	e = bpf_ringbuf_reserve(&refused, sizeof(*e), 0);
	if (!e) {
		stat_inc(STAT_REFUSED_DROPPED);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->op = op;
	e->why = why;
	e->family = family;
	e->type = type;
	e->proto = proto;
	leader_comm(e->comm);
	identify_task(e->pid, &e->ppid, &e->exe);
	return e;
}

/* As for exec events, the reader polls; it is woken only when a quarter
 * of the buffer waits. */
static __always_inline void refused_submit(struct refused_event *e)
{
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&refused, BPF_RB_AVAIL_DATA) >= REFUSED_WAKEUP_BYTES ?
				      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* refused_udp reports a UDP connect() or send the jail refuses. */
static __always_inline void refused_udp(struct bpf_sock_addr *ctx, struct orig_dst *o, __u16 op)
{
	struct refused_event *e = refused_begin(op, REFUSED_UDP, ctx->family, ctx->type, ctx->protocol);

	if (!e)
		return;
	e->addr[0] = o->addr[0];
	e->addr[1] = o->addr[1];
	e->addr[2] = o->addr[2];
	e->addr[3] = o->addr[3];
	e->port = o->port;
	refused_submit(e);
}

static __always_inline void set_v4(struct bpf_sock_addr *ctx, __u16 port)
{
	ctx->user_ip4 = bpf_htonl(LOOPBACK4);
	ctx->user_port = bpf_htons(port);
}

static __always_inline void set_v6(struct bpf_sock_addr *ctx, int mapped)
{
	__u16 port = mapped ? listen_port4 : listen_port6;

	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	if (mapped) {
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = bpf_htonl(LOOPBACK4);
	} else {
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(port);
}

static __always_inline void set_v6_dns(struct bpf_sock_addr *ctx, int mapped)
{
	set_v6(ctx, mapped);
	ctx->user_port = bpf_htons(mapped ? dns_port4 : dns_port6);
}

static __always_inline void orig4(struct bpf_sock_addr *ctx, struct orig_dst *o)
{
	o->addr[2] = bpf_htonl(0x0000ffff);
	o->addr[3] = ctx->user_ip4;
	o->port = (__u16)ctx->user_port;
	o->family = AF_INET;
}

static __always_inline int orig6(struct bpf_sock_addr *ctx, struct orig_dst *o)
{
	int mapped;

	o->addr[0] = ctx->user_ip6[0];
	o->addr[1] = ctx->user_ip6[1];
	o->addr[2] = ctx->user_ip6[2];
	o->addr[3] = ctx->user_ip6[3];
	o->port = (__u16)ctx->user_port;
	mapped = is_v4mapped(o->addr);
	o->family = mapped ? AF_INET : AF_INET6;
	return mapped;
}

/* ---------------- connect ---------------- */

/* All TCP, DNS included, goes to the listener (it hands port 53 to the shim),
 * so one path attributes and logs every stream. */
SEC("cgroup/connect4")
int jail_connect4(struct bpf_sock_addr *ctx)
{
	struct orig_dst o = {};

	orig4(ctx, &o);
	if (ctx->type == SOCK_STREAM) {
		if (!record(ctx, &o))
			return 0;
		set_v4(ctx, listen_port4);
		stat_inc(STAT_TCP_REDIR);
		return 1;
	}
	if (ctx->type == SOCK_DGRAM && o.port == bpf_htons(DNS_PORT)) {
		if (!record(ctx, &o))
			return 0;
		set_v4(ctx, dns_port4);
		stat_inc(STAT_DNS_REDIR);
		return 1;
	}
	stat_inc(STAT_UDP_DENIED);
	refused_udp(ctx, &o, REFUSED_CONNECT);
	return 0; /* EPERM: QUIC and other UDP fall back to TCP or fail */
}

SEC("cgroup/connect6")
int jail_connect6(struct bpf_sock_addr *ctx)
{
	struct orig_dst o = {};
	int mapped = orig6(ctx, &o);

	if (ctx->type == SOCK_STREAM) {
		if (!record(ctx, &o))
			return 0;
		set_v6(ctx, mapped);
		stat_inc(STAT_TCP_REDIR);
		return 1;
	}
	if (ctx->type == SOCK_DGRAM && o.port == bpf_htons(DNS_PORT)) {
		if (!record(ctx, &o))
			return 0;
		set_v6_dns(ctx, mapped);
		stat_inc(STAT_DNS_REDIR);
		return 1;
	}
	stat_inc(STAT_UDP_DENIED);
	refused_udp(ctx, &o, REFUSED_CONNECT);
	return 0;
}

/* ---------------- unconnected UDP ---------------- */

SEC("cgroup/sendmsg4")
int jail_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct orig_dst o = {};

	/* A connected AF_INET6 socket with a v4-mapped peer sends through
	 * udp_sendmsg() with its (already rewritten) peer as the address, so
	 * this hook sees the shim itself on every send: let it pass. */
	if (ctx->user_ip4 == bpf_htonl(LOOPBACK4) && (__u16)ctx->user_port == bpf_htons(dns_port4))
		return 1;
	orig4(ctx, &o);
	if (o.port == bpf_htons(DNS_PORT)) {
		if (!record(ctx, &o))
			return 0;
		set_v4(ctx, dns_port4);
		stat_inc(STAT_DNS_REDIR);
		return 1;
	}
	stat_inc(STAT_UDP_DENIED);
	refused_udp(ctx, &o, REFUSED_SENDMSG);
	return 0;
}

SEC("cgroup/sendmsg6")
int jail_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct orig_dst o = {};
	int mapped = orig6(ctx, &o);

	if (o.port == bpf_htons(DNS_PORT)) {
		if (!record(ctx, &o))
			return 0;
		set_v6_dns(ctx, mapped);
		stat_inc(STAT_DNS_REDIR);
		return 1;
	}
	/* Already the shim (a sendto() on a socket connect() rewrote). */
	if (!mapped && o.addr[0] == 0 && o.addr[1] == 0 && o.addr[2] == 0 &&
	    o.addr[3] == bpf_htonl(1) && o.port == bpf_htons(dns_port6))
		return 1;
	if (mapped && o.addr[3] == bpf_htonl(LOOPBACK4) && o.port == bpf_htons(dns_port4))
		return 1;
	stat_inc(STAT_UDP_DENIED);
	refused_udp(ctx, &o, REFUSED_SENDMSG);
	return 0;
}

/* recvmsg hooks must return 1: the kernel refuses to load one that may
 * return anything else. */
SEC("cgroup/recvmsg4")
int jail_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct orig_dst *o;
	__u64 cookie;

	if (ctx->user_ip4 != bpf_htonl(LOOPBACK4) || (__u16)ctx->user_port != bpf_htons(dns_port4))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
	if (!o || o->family != AF_INET)
		return 1;
	ctx->user_ip4 = o->addr[3];
	ctx->user_port = o->port;
	stat_inc(STAT_RECV_REWRITTEN);
	return 1;
}

SEC("cgroup/recvmsg6")
int jail_recvmsg6(struct bpf_sock_addr *ctx)
{
	__u32 a[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
	__u16 port = (__u16)ctx->user_port;
	struct orig_dst *o;
	__u64 cookie;

	if (is_v4mapped(a)) {
		if (a[3] != bpf_htonl(LOOPBACK4) || port != bpf_htons(dns_port4))
			return 1;
	} else if (a[0] != 0 || a[1] != 0 || a[2] != 0 || a[3] != bpf_htonl(1) ||
		   port != bpf_htons(dns_port6)) {
		return 1;
	}
	cookie = bpf_get_socket_cookie(ctx);
	o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
	if (!o)
		return 1;
	ctx->user_ip6[0] = o->addr[0];
	ctx->user_ip6[1] = o->addr[1];
	ctx->user_ip6[2] = o->addr[2];
	ctx->user_ip6[3] = o->addr[3];
	ctx->user_port = o->port;
	stat_inc(STAT_RECV_REWRITTEN);
	return 1;
}

/* ---------------- getpeername ---------------- */

SEC("cgroup/getpeername4")
int jail_getpeer4(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);

	if (!o || o->family != AF_INET)
		return 1;
	ctx->user_ip4 = o->addr[3];
	ctx->user_port = o->port;
	stat_inc(STAT_PEER_REWRITTEN);
	return 1;
}

SEC("cgroup/getpeername6")
int jail_getpeer6(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);

	if (!o)
		return 1;
	/* An AF_INET6 socket keeps its peer v4-mapped: addr already is. */
	ctx->user_ip6[0] = o->addr[0];
	ctx->user_ip6[1] = o->addr[1];
	ctx->user_ip6[2] = o->addr[2];
	ctx->user_ip6[3] = o->addr[3];
	ctx->user_port = o->port;
	stat_inc(STAT_PEER_REWRITTEN);
	return 1;
}

/* ---------------- sockops ---------------- */

static __always_inline void sockops_key(struct bpf_sock_ops *skops, struct tuple_key *k)
{
	/* Load every ctx field unconditionally and through volatile: otherwise
	 * clang merges the two branches into "ptr = ctx + (v4 ? 28 : 60)" and
	 * the verifier rejects it ("dereference of modified ctx ptr"). */
	__u32 family = *(volatile __u32 *)&skops->family;
	__u32 ip4 = *(volatile __u32 *)&skops->local_ip4;
	__u32 a0 = *(volatile __u32 *)&skops->local_ip6[0];
	__u32 a1 = *(volatile __u32 *)&skops->local_ip6[1];
	__u32 a2 = *(volatile __u32 *)&skops->local_ip6[2];
	__u32 a3 = *(volatile __u32 *)&skops->local_ip6[3];
	__u32 port = *(volatile __u32 *)&skops->local_port;

	if (family == AF_INET) {
		k->addr[0] = 0;
		k->addr[1] = 0;
		k->addr[2] = bpf_htonl(0x0000ffff);
		k->addr[3] = ip4;
	} else {
		/* a v4-mapped AF_INET6 socket already has ::ffff:a.b.c.d */
		k->addr[0] = a0;
		k->addr[1] = a1;
		k->addr[2] = a2;
		k->addr[3] = a3;
	}
	k->port = (__u16)port; /* sockops local_port is host order */
}

SEC("sockops")
int jail_sockops(struct bpf_sock_ops *skops)
{
	struct tuple_key k = {};
	struct orig_dst *o;
	__u64 cookie;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		/* Runs before the final ACK is sent, so the entry exists before
		 * the listener's accept() returns (the proxy still retries a miss
		 * briefly: bpf.OrigDst). */
		cookie = bpf_get_socket_cookie(skops);
		o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
		if (!o) {
			stat_inc(STAT_TUPLE_NOORIG);
			break;
		}
		sockops_key(skops, &k);
		bpf_map_update_elem(&orig_by_tuple, &k, o, BPF_ANY);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		stat_inc(STAT_TUPLE_FILLED);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE) {
			sockops_key(skops, &k);
			bpf_map_delete_elem(&orig_by_tuple, &k);
		}
		break;
	}
	return 1;
}

/* ---------------- socket creation policy ---------------- */

/* Set by internal/bpf while tp_btf/sys_exit reports refused sockets. */
volatile __u32 socket_observed = 0;

SEC("cgroup/sock_create")
int jail_sock_create(struct bpf_sock *sk)
{
	struct refused_event *e;

	if (sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP)
		return 1;
	if (sk->type == SOCK_DGRAM && sk->protocol == IPPROTO_UDP)
		return 1;
	stat_inc(STAT_SOCK_DENIED);
	/* tp_btf/sys_exit reports it, when it runs: it also sees the sockets
	 * refused before this hook (raw without CAP_NET_RAW, ICMP outside
	 * ping_group_range, the families the seccomp filter refuses). */
	e = socket_observed ? NULL : refused_begin(REFUSED_SOCKET, REFUSED_SOCK, sk->family, sk->type, sk->protocol);
	if (e)
		refused_submit(e);
	return 0; /* raw, ICMP ping, SCTP, MPTCP, UDP-Lite ... -> EPERM */
}

SEC("cgroup/sock_release")
int jail_sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);

	bpf_map_delete_elem(&orig_by_cookie, &cookie);
	return 1;
}

/* ---------------- inbound ---------------- */

#define LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every network namespace */

/*
 * Every packet delivered to a socket of the jail (sk_filter: TCP, listeners
 * included, so a SYN from another host never makes a connection; UDP; one
 * run per packet) passes only if it came in over loopback: the replies of
 * ebpfjail's listener and DNS shim, and connections from the host's own
 * processes (to 127.0.0.1, ::1 or one of the host's addresses, which the
 * kernel also routes over lo). Anything from another host arrives on
 * another device and is dropped: a jailed server on 0.0.0.0 is not a way
 * in. Attached unless ebpfjail was told to allow inbound.
 */
/*
 * Dropped inbound packets are counted per source address, not reported one
 * by one (a flood would be one event per packet): the reader looks at the
 * counts every second and reports what grew. The program runs in softirq
 * context, for a socket of the jail, not for a process.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct inbound_key);
	__type(value, struct inbound_count);
} inbound_by_src SEC(".maps");

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* count_inbound reads the source of a packet from its IP header (cgroup_skb
 * sees the packet from the network header on). */
static __always_inline void count_inbound(struct __sk_buff *skb)
{
	struct inbound_key k = {};
	struct inbound_count c = {.packets = 1};
	struct inbound_count *v;
	__u8 proto = 0, vihl = 0;
	__u16 port = 0;
	__u32 off;

	if (!refused_events)
		return;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1) ||
		    bpf_skb_load_bytes(skb, 12, &k.addr[3], 4))
			return;
		k.addr[2] = bpf_htonl(0x0000ffff);
		off = (vihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) || bpf_skb_load_bytes(skb, 8, k.addr, 16))
			return;
		off = 40; /* extension headers are not walked: no port then */
	} else {
		return;
	}
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !bpf_skb_load_bytes(skb, off + 2, &port, 2))
		port = bpf_ntohs(port);
	v = bpf_map_lookup_elem(&inbound_by_src, &k);
	if (v) {
		__sync_fetch_and_add(&v->packets, 1);
		v->proto = proto;
		v->port = port;
		return;
	}
	c.proto = proto;
	c.port = port;
	bpf_map_update_elem(&inbound_by_src, &k, &c, BPF_NOEXIST);
}

SEC("cgroup_skb/ingress")
int jail_ingress(struct __sk_buff *skb)
{
	if (skb->ingress_ifindex == LOOPBACK_IFINDEX)
		return 1;
	stat_inc(STAT_INBOUND_DROPPED);
	count_inbound(skb);
	return 0;
}

/* ---------------- the jail's cgroup ---------------- */

/* The jail's cgroup (slot 0), set by internal/bpf (Attach, WatchExec) from an
 * fd of the cgroup2 directory, for the host-wide programs below: the unix
 * guard and the exec hook. Empty, they act for no task. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jail_cgroup SEC(".maps");

/* ---------------- unix sockets ---------------- */

/*
 * A unix socket can lead out of the jail without a single inet socket: the
 * resolver daemons (systemd-resolved, nscd) look names up for the caller,
 * and a container engine's socket starts an unjailed container. DenyUnix
 * fills this map with the addresses the jail may not reach.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct unix_path);
	__type(value, __u8); /* UNIX_DENY or UNIX_ALLOW */
} unix_deny SEC(".maps");

/* unix_deny's values: most entries deny; UNIX_ALLOW marks an abstract name
 * opened by --allow-unix @NAME, which matters while abstract_allow_only is
 * set. */
#define UNIX_DENY 1
#define UNIX_ALLOW 2

/*
 * Abstract sockets bound outside the jail are normally out of reach through
 * the jail's Landlock domain, which has no per-name exception. To open one
 * name, ebpfjail leaves that scope off and sets this: then an abstract name
 * passes only if unix_deny holds it as UNIX_ALLOW (the jail's own abstract
 * sockets included: these hooks cannot tell who bound a name).
 */
volatile __u32 abstract_allow_only = 0;

/* The kernel context behind struct bpf_sock_addr. Its UAPI view has no
 * field for a unix address; the kernel one points at the sockaddr_un the
 * caller passed (already copied into a kernel buffer). Just the fields we
 * read; CO-RE relocates them. */
struct bpf_sock_addr_kern {
	void *uaddr;
	__u32 uaddrlen;
} __attribute__((preserve_access_index));

/* kfunc, Linux 6.2+ (the unix hooks need 6.7). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

#define SUN_PATH_OFFSET 2 /* offsetof(struct sockaddr_un, sun_path) */

/* unix_key is the bytes of an address made into its unix_deny key: a
 * pathname (no leading NUL) ends at its first NUL, and what follows is
 * zeroed (the kernel ignores it); an abstract name keeps every byte. The
 * _str read does the cutting, with no loop for the verifier to walk (a loop
 * here cost ~4 ms of verification per program at every start). buf has
 * room for the terminator the _str read writes after len bytes. */
struct unix_key_buf {
	struct unix_path k;
	char nul[8];
};

static __always_inline int unix_key(struct unix_key_buf *buf, const char *src, __u32 len)
{
	char first = 0;

	if (bpf_probe_read_kernel(&first, 1, src))
		return -1;
	if (!first)
		return bpf_probe_read_kernel(buf->k.path, len, src) ? -1 : 0;
	return bpf_probe_read_kernel_str(buf->k.path, len + 1, src) < 0 ? -1 : 0;
}

#define AF_UNIX 1

/* refused_unix reports a unix address or peer the jail refuses: the
 * address's first len bytes (0: unknown). */
static __always_inline void refused_unix(__u16 op, __u16 why, __u16 type, struct unix_path *addr, __u32 len)
{
	struct refused_event *e = refused_begin(op, why, AF_UNIX, type, 0);

	if (!e)
		return;
	__builtin_memcpy(e->path, addr->path, sizeof(e->path));
	e->path_len = len;
	refused_submit(e);
}

/*
 * unix_verdict returns 1 to let the address through and 0 (EPERM) when it is
 * in unix_deny. The key is the address as the kernel will read it: a
 * pathname ends at the first NUL or at the address length, whichever comes
 * first (what follows a NUL is ignored by the kernel, so it is zeroed here,
 * or "/run/docker.sock\0x" would slip past); an abstract name (leading NUL)
 * is every byte of the address length. Nothing else is normalised: the
 * kernel resolves the path only after this hook, so "/run//x", a relative
 * path or a symlink to a denied socket are other keys: the unix guard
 * (below) catches them once the kernel has resolved them.
 */
static __always_inline int unix_verdict(struct bpf_sock_addr *ctx, __u16 op)
{
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	struct unix_key_buf buf = {};
	__u32 len = sa->uaddrlen;
	__u32 named = 0; /* bytes of buf.k that hold the address */
	__u8 *v;

	/* unix_validate_addr() has checked this already; be safe anyway. */
	if (len <= SUN_PATH_OFFSET || len > SUN_PATH_OFFSET + UNIX_PATH_MAX)
		goto deny;
	len -= SUN_PATH_OFFSET;
	if (unix_key(&buf, (char *)sa->uaddr + SUN_PATH_OFFSET, len))
		goto deny;
	named = len;
	v = bpf_map_lookup_elem(&unix_deny, &buf.k);
	if (v) {
		if (*v == UNIX_ALLOW)
			return 1;
		goto deny;
	}
	if (buf.k.path[0] == 0 && abstract_allow_only)
		goto deny;
	return 1;
deny:
	stat_inc(STAT_UNIX_DENIED);
	refused_unix(op, REFUSED_UNIX_ADDR, ctx->type, &buf.k, named);
	return 0;
}

/* connect() of stream, seqpacket and datagram unix sockets. */
SEC("cgroup/connect_unix")
int jail_connect_unix(struct bpf_sock_addr *ctx)
{
	return unix_verdict(ctx, REFUSED_CONNECT);
}

/* sendto()/sendmsg() with an address on a datagram unix socket. */
SEC("cgroup/sendmsg_unix")
int jail_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return unix_verdict(ctx, REFUSED_SENDMSG);
}

/* ---------------- unix guard (BPF LSM) ---------------- */

/*
 * The cgroup programs above see the address as the caller wrote it, before
 * the kernel resolves it, so "/run//docker.sock", "/run/./docker.sock", a
 * symlink, a hard link or /proc/self/root/run/docker.sock get past them.
 * These LSM hooks run after the resolution, with the peer socket itself
 * (connect() of stream and seqpacket sockets; every datagram send, connected
 * or not), and refuse a peer that is:
 *
 *   - bound to an inode in unix_deny_ino (DenyUnix stats each existing path),
 *     however the caller reached it; or
 *   - bound under a name in unix_deny: the name its server gave bind(), so a
 *     daemon restarted since DenyUnix (a new inode) is still refused when it
 *     binds the listed path, and an abstract name is refused on kernels that
 *     lack the cgroup unix hooks.
 *
 * They are global hooks: every other task of the host pays one cgroup test.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048); /* up to two keys per unix_deny entry */
	__type(key, struct unix_ino);
	__type(value, __u8);
} unix_deny_ino SEC(".maps");

/* Self-test (internal/bpf's guardRuns): while guard_probe_tgid is set, the
 * hooks record that they ran for that process (bit 1: unix_stream_connect,
 * bit 2: unix_may_send). A kernel built with the BPF LSM but without "bpf"
 * in its lsm= list loads and attaches the programs and never runs them. */
volatile __u32 guard_probe_tgid = 0;
volatile __u32 guard_probe_seen = 0;

#define GUARD_PROBE_CONNECT 1
#define GUARD_PROBE_SEND 2

static __always_inline void guard_probe(__u32 bit)
{
	__u32 tgid = guard_probe_tgid;

	if (tgid && tgid == bpf_get_current_pid_tgid() >> 32)
		guard_probe_seen |= bit;
}

/* Just the kernel fields we read; CO-RE relocates them. */
struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct super_block {
	__u32 s_dev; /* dev_t: MKDEV(major, minor) */
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct dentry {
	struct inode *d_inode;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[UNIX_PATH_MAX];
};

/* What the server passed to bind(): len counts sun_family and, for a
 * pathname, the NUL the kernel appended. */
struct unix_address {
	int len;
	struct sockaddr_un name[];
} __attribute__((preserve_access_index));

/* struct unix_sock begins with its struct sock: a struct sock * of a unix
 * socket is one. path is empty (dentry NULL) for an abstract or unbound
 * socket; addr is NULL for an unbound one (a socketpair() end). */
struct unix_sock {
	struct unix_address *addr;
	struct path path;
} __attribute__((preserve_access_index));

/* unix_guard returns 0 to let the caller reach peer and -EPERM to refuse. */
static __always_inline int unix_guard(struct unix_sock *peer)
{
	struct unix_ino ik = {};
	struct unix_key_buf buf = {};
	struct unix_address *addr;
	struct dentry *dentry;
	struct inode *inode;
	const char *name;
	__u32 len;
	__u8 *v;

	if (bpf_current_task_under_cgroup(&jail_cgroup, 0) != 1)
		return 0;
	if (!peer)
		return 0;
	dentry = BPF_CORE_READ(peer, path.dentry);
	if (dentry) {
		inode = BPF_CORE_READ(dentry, d_inode);
		ik.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		ik.ino = BPF_CORE_READ(inode, i_ino);
		if (bpf_map_lookup_elem(&unix_deny_ino, &ik))
			goto deny;
	}
	addr = BPF_CORE_READ(peer, addr);
	if (!addr)
		return 0;
	len = BPF_CORE_READ(addr, len);
	if (len <= SUN_PATH_OFFSET)
		return 0; /* no name (not seen for a bound socket) */
	/* Never more: sizeof(struct sockaddr_un). Written as one test, the
	 * way unix_verdict does, so the verifier keeps len's bounds. */
	if (len > SUN_PATH_OFFSET + UNIX_PATH_MAX)
		goto deny;
	len -= SUN_PATH_OFFSET;
	name = (const char *)addr + bpf_core_field_offset(struct unix_address, name) + SUN_PATH_OFFSET;
	if (unix_key(&buf, name, len))
		goto deny;
	v = bpf_map_lookup_elem(&unix_deny, &buf.k);
	if (!v || *v == UNIX_ALLOW)
		return 0;
deny:
	stat_inc(STAT_UNIX_GUARD_DENIED);
	return -EPERM;
}

/*
 * security_unix_stream_connect(struct sock *sock, struct sock *other,
 * struct sock *newsk): connect() of a stream or seqpacket socket, other is
 * the listener the address resolved to. The last argument of an LSM program
 * is what the BPF LSM programs before it returned.
 */
SEC("lsm/unix_stream_connect")
int jail_unix_stream_connect(__u64 *ctx)
{
	struct unix_sock *other = (struct unix_sock *)ctx[1];
	int ret = (int)ctx[3];

	guard_probe(GUARD_PROBE_CONNECT);
	if (ret)
		return ret;
	return unix_guard(other);
}

/*
 * security_unix_may_send(struct socket *sock, struct socket *other): every
 * send of a datagram socket, to its connected peer or to the address given
 * (and connect() of one).
 */
SEC("lsm/unix_may_send")
int jail_unix_may_send(__u64 *ctx)
{
	struct socket *other = (struct socket *)ctx[1];
	int ret = (int)ctx[2];

	guard_probe(GUARD_PROBE_SEND);
	if (ret)
		return ret;
	return unix_guard((struct unix_sock *)BPF_CORE_READ(other, sk));
}

/* ---------------- socket() observer ---------------- */

/*
 * socket() calls of the jail that fail with EPERM, EACCES or EAFNOSUPPORT,
 * whoever refused them: jail_sock_create, the kernel's own checks that run
 * before it (CAP_NET_RAW for raw sockets, ping_group_range for ICMP), or
 * the seccomp filter (every family but unix, inet, inet6 and netlink). It
 * decides nothing. A syscall exit tracepoint puts every syscall of the host
 * on the slow path while it is attached, so internal/bpf attaches it only
 * when asked (--audit); jail_sock_create reports what it refuses otherwise.
 *
 * The syscall's number and arguments are read from its saved registers:
 * x86-64 only (on other architectures the program returns at once).
 */
volatile const __u32 nr_socket = 0; /* socket(2)'s number; 0: not known */

#define EACCES 13
#define EAFNOSUPPORT 97

struct pt_regs___x86 {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

SEC("tp_btf/sys_exit")
int jail_sys_exit(__u64 *ctx)
{
	struct pt_regs___x86 *regs = (struct pt_regs___x86 *)ctx[0];
	long ret = (long)ctx[1];
	struct refused_event *e;
	__u16 why = REFUSED_SOCK;

	if (ret != -EPERM && ret != -EACCES && ret != -EAFNOSUPPORT)
		return 0;
	if (!nr_socket || !bpf_core_field_exists(regs->orig_ax))
		return 0;
	if (BPF_CORE_READ(regs, orig_ax) != nr_socket)
		return 0;
	if (bpf_current_task_under_cgroup(&jail_cgroup, 0) != 1)
		return 0;
	if (ret == -EAFNOSUPPORT)
		why = REFUSED_FAMILY;
	e = refused_begin(REFUSED_SOCKET, why, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si) & 0xf,
			  BPF_CORE_READ(regs, dx));
	if (e)
		refused_submit(e);
	return 0;
}

/* ---------------- exec events ---------------- */

/* A ring buffer map carries no value type, so this anchors struct
 * exec_event in the BTF for bpf2go's -type (it lands in .rodata, which the
 * ports already make). */
const struct exec_event *const exec_event_type __attribute__((unused)) = 0;

#define EXEC_RING_BYTES (256 * 1024) /* ~320 events of 804 (+8) bytes */

/* Set by internal/bpf while an ExecWatcher reads the ring buffer: the hook
 * is attached for process identity too, and must not fill the buffer for
 * no reader (or for a watcher that has closed). */
volatile __u32 exec_events = 0;

/* remember_exe keeps what the current process now runs: bprm->interp, the
 * file the kernel opened and loaded (the interpreter named by a #! line;
 * for anything else the path given to execve, bprm->filename). A path the
 * buffer cannot hold is cut and marked. */
static __always_inline void remember_exe(struct linux_binprm *bprm, __u32 tgid)
{
	struct exec_id id = {.tgid = tgid, .ns = bpf_ktime_get_ns()};
	struct proc_exe pe = {};
	const char *path = BPF_CORE_READ(bprm, interp);
	char next = 0;
	long n;

	n = bpf_probe_read_kernel_str(pe.path, sizeof(pe.path), path);
	if (n < 0)
		pe.path[0] = 0;
	else if (n == sizeof(pe.path) &&
		 !bpf_probe_read_kernel(&next, 1, path + sizeof(pe.path) - 1) && next)
		pe.truncated = 1;
	bpf_map_update_elem(&exe_by_exec, &id, &pe, BPF_ANY);
	bpf_map_update_elem(&exec_of_tgid, &tgid, &id, BPF_ANY);
}
#define EXEC_WAKEUP_BYTES (EXEC_RING_BYTES / 4)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXEC_RING_BYTES);
} execs SEC(".maps");

/*
 * A BTF raw tracepoint rather than a classic "tp/sched/sched_process_exec":
 * it needs no tracefs mount (to look up the tracepoint id) and skips the
 * perf record the classic one builds. It fires once per successful exec on
 * the whole host, after the new image is set up (comm, mm and the argv pages
 * are the new program's), so the filter must be cheap:
 * bpf_current_task_under_cgroup is one RCU pointer walk. It matches the
 * cgroup and its descendants, like the cgroup programs do: a jailed root
 * that makes a sub-cgroup inside the jail is still seen.
 *
 * The arguments are those of trace_sched_process_exec(): (struct task_struct
 * *p, pid_t old_pid, struct linux_binprm *bprm); p is current.
 */
SEC("tp_btf/sched_process_exec")
int jail_exec(__u64 *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	struct task_struct *task;
	struct exec_event *e;
	unsigned long start, end;
	__u64 size, len;

	if (bpf_current_task_under_cgroup(&jail_cgroup, 0) != 1)
		return 0;
	/* Before the event, which may be dropped: identity must not be. The
	 * hook runs in the exec'ing task before execve returns, so nothing the
	 * new program does can come before it. */
	remember_exe(bprm, bpf_get_current_pid_tgid() >> 32);
	if (!exec_events)
		return 0;
	e = bpf_ringbuf_reserve(&execs, sizeof(*e), 0);
	if (!e) {
		stat_inc(STAT_EXEC_DROPPED);
		return 0;
	}
	task = (struct task_struct *)bpf_get_current_task();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename)) < 0)
		e->filename[0] = 0;

	/* The argv strings sit back to back, NUL terminated, at the top of
	 * the new stack; the kernel just wrote them, so they are resident. */
	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	size = end > start ? end - start : 0;
	len = size < EXEC_ARGS_MAX ? size : EXEC_ARGS_MAX;
	if (bpf_probe_read_user(e->args, len, (const void *)start))
		len = 0;
	e->args_len = len;
	e->args_size = size;
	/* Waking the reader costs more than everything else here (~14 us of
	 * the 14.4 us per event measured on a 2-vCPU VM: an irq_work IPI and a
	 * cross-CPU wakeup), so it happens only once a quarter of the buffer
	 * waits; the reader polls at a short interval and drains on close. */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&execs, BPF_RB_AVAIL_DATA) >= EXEC_WAKEUP_BYTES ?
				      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return 0;
}

/*
 * trace_sched_process_fork(struct task_struct *parent, struct task_struct
 * *child), run by the parent (current) once the child exists, before it
 * runs. A new process (not a thread) runs its parent's program until it
 * execs; a pid reused from a process that is gone loses what that one ran.
 */
SEC("tp_btf/sched_process_fork")
int jail_fork(__u64 *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx[1];
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	struct exec_id *id;
	__u32 tgid;

	if (bpf_current_task_under_cgroup(&jail_cgroup, 0) != 1)
		return 0;
	tgid = BPF_CORE_READ(child, tgid);
	if (tgid == parent)
		return 0; /* a thread */
	id = bpf_map_lookup_elem(&exec_of_tgid, &parent);
	if (!id) {
		bpf_map_delete_elem(&exec_of_tgid, &tgid);
		return 0;
	}
	bpf_map_lookup_elem(&exe_by_exec, id); /* touch: still in use */
	bpf_map_update_elem(&exec_of_tgid, &tgid, id, BPF_ANY);
	return 0;
}

/*
 * trace_sched_process_exit(struct task_struct *p, ...): every exiting
 * thread, current, still in its cgroup. The last thread of a process
 * (signal->live already counted down to 0) forgets the process; its exec's
 * path stays for the records that name it.
 */
SEC("tp_btf/sched_process_exit")
int jail_exit(__u64 *ctx)
{
	struct task_struct *task;
	__u32 tgid;

	if (bpf_current_task_under_cgroup(&jail_cgroup, 0) != 1)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_map_delete_elem(&exec_of_tgid, &tgid);
	return 0;
}
