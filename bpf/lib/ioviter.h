/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* iov_iter arguments (tty_write's, the write paths'): the bytes the
 * iterator describes, read from the caller's memory into a string slot of
 * the record. The first segment only: a write(2) is one ITER_UBUF buffer
 * (6.0 and later) and a writev(2) an ITER_IOVEC array whose first iovec
 * holds the start of the data, which is what a policy looks at. */
#pragma once

#include "common.h"
#include "hook.h"

/* struct iov_iter before 6.4 named its iovec array iov (__iov since) */
struct iov_iter___iov {
	const struct iovec *iov;
} __attribute__((preserve_access_index));

/* the iter_type values the kernel has: enum iter_type was renumbered
 * (ITER_UBUF is 6 on 6.1, 0 on 6.12) and has no ITER_UBUF before 6.0 */
enum iter_type___k {
	ITER_UBUF___k = 0,
	ITER_IOVEC___k = 1,
};

/* put_iov_iter copies at most STR_LEN bytes of the data iterator itp
 * describes into string slot s of the record being built (rec_heap):
 * PATH_F_TRUNCATED in its flags when the iterator holds more than that (in
 * its first segment or after it). An iterator of another kind (kernel or
 * page vectors) or a fault leaves the slot empty. Global, as
 * match_process: verified once, whatever calls it. */
__noinline int put_iov_iter(__u32 s, __u64 itp)
{
	struct iov_iter *it = (struct iov_iter *)itp;
	struct gen_rec *r;
	__u32 zero = 0;
	__u8 type;
	__u64 count, off, base = 0, len = 0;

	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	type = BPF_CORE_READ(it, iter_type);
	count = BPF_CORE_READ(it, count);
	off = BPF_CORE_READ(it, iov_offset);
	r->str_len[s & 1] = 0;
	r->str_flags[s & 1] = 0;
	if (bpf_core_enum_value_exists(enum iter_type___k, ITER_UBUF___k) &&
	    type == bpf_core_enum_value(enum iter_type___k, ITER_UBUF___k)) {
		base = (__u64)BPF_CORE_READ(it, ubuf) + off;
		len = count;
	} else if (type == bpf_core_enum_value(enum iter_type___k, ITER_IOVEC___k)) {
		const struct iovec *iov;

		if (bpf_core_field_exists(it->__iov))
			iov = BPF_CORE_READ(it, __iov);
		else
			iov = BPF_CORE_READ((struct iov_iter___iov *)it, iov);
		base = (__u64)BPF_CORE_READ(iov, iov_base) + off;
		len = BPF_CORE_READ(iov, iov_len);
		len = len > off ? len - off : 0;
		if (len > count)
			len = count;
	} else {
		return 0;
	}
	if (len > STR_LEN)
		len = STR_LEN;
	if (count > len)
		r->str_flags[s & 1] = PATH_F_TRUNCATED;
	if (!len)
		return 0;
	if (bpf_probe_read_user(&r->data[(s & 1) * STR_LEN], len & (2 * STR_LEN - 1), (void *)base))
		return 0;
	r->str_len[s & 1] = len;
	return 0;
}
