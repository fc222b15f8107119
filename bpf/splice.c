// SPDX-License-Identifier: GPL-2.0
/*
 * ebpfjail: the kernel splice. Once ebpfjail has decided a connection that
 * it no longer needs to read (an allowed tunnel with no byte limit), it puts
 * the client's socket and the upstream socket in splice_socks and a record
 * for each in splice_peers; this stream verdict program then moves every
 * byte either socket receives straight to the other one's send queue.
 *
 *   sk_skb/stream_verdict  redirect to the peer named in splice_peers,
 *                          counting the bytes per receiving socket
 *
 * A byte the program cannot redirect (the peer is not in splice_socks yet:
 * the two sockets are added one after the other) is passed to the socket it
 * came in on, and from then on every byte of that socket is: ebpfjail reads
 * them there and writes them to the peer itself, so the order holds.
 *
 * Nothing here is pinned: the map and the program go with ebpfjail, and a
 * socket leaves splice_socks when it closes.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "splice.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, __u64);
} splice_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, struct splice_side);
} splice_peers SEC(".maps");

SEC("sk_skb/stream_verdict")
int splice_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct splice_side *s = bpf_map_lookup_elem(&splice_peers, &cookie);

	__u32 len = skb->len;
	/* A FIN comes as a buffer of no bytes: redirected, the peer's send
	 * fails (EPIPE on the peer). Passed, it ends the reads here, which is
	 * how ebpfjail learns of the half-close. */
	if (!s || s->passed || len == 0)
		return SK_PASS;
	if (bpf_sk_redirect_hash(skb, &splice_socks, &s->peer, 0) != SK_PASS) {
		/* The peer is not there yet: this socket's bytes go through
		 * ebpfjail from now on, this one first. */
		s->passed = 1;
		return SK_PASS;
	}
	__sync_fetch_and_add(&s->redirected, len);
	return SK_PASS;
}
