/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared definitions: every ring-buffer record starts with struct rec_header,
 * whose op tag lets user space dispatch and whose version lets a newer agent
 * reject records written by an incompatible older object. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define RECORD_VERSION 1

enum record_op {
	OP_EXEC = 1,
	OP_EXIT = 2,
	OP_FORK = 3,
	OP_GENERIC = 4,
	OP_LOADER = 5, /* bpf/loader.c: an executable file a process mapped */
};

struct rec_header {
	__u8 op;
	__u8 version;
	__u16 pad;
	__u32 size;
	__u64 ktime; /* CLOCK_BOOTTIME ns */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Each object declares its own per-CPU counter map named stats. */
#define DEFINE_STATS(n)                                      \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);     \
		__uint(max_entries, n);                      \
		__type(key, __u32);                          \
		__type(value, __u64);                        \
	} stats SEC(".maps");                                \
	static __always_inline void stat_inc(__u32 idx)      \
	{                                                    \
		__u64 *v = bpf_map_lookup_elem(&stats, &idx); \
		if (v)                                       \
			*v += 1;                             \
	}

static __always_inline void rec_init(struct rec_header *h, __u8 op, __u32 size)
{
	h->op = op;
	h->version = RECORD_VERSION;
	h->pad = 0;
	h->size = size;
	h->ktime = bpf_ktime_get_boot_ns();
}
