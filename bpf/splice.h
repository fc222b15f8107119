/* SPDX-License-Identifier: GPL-2.0 */
#ifndef EBPFJAIL_SPLICE_H
#define EBPFJAIL_SPLICE_H

#include <linux/types.h>

/* One socket of a spliced pair, keyed by its cookie. */
struct splice_side {
	__u64 peer;       /* the other socket's cookie */
	__u64 redirected; /* bytes received here and redirected to the peer */
	__u32 passed;     /* 1: a byte could not be redirected; all go up now */
	__u32 pad;
};

#endif
