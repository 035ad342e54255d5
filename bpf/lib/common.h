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
	__u16 run; /* the agent run: run_tag, or a hook's gen_conf.run */
	__u32 size;
	__u64 ktime; /* CLOCK_BOOTTIME ns */
};

/* The agent run that loaded this object, set by user space at load. A
 * restart adopts the pinned base sensor and its ring buffer, which the
 * previous run's hooks keep writing to until this run's replace them: the
 * tag tells their records apart. 0: an agent that did not set it. The
 * hooks' records carry their configuration's run instead (gen_conf.run),
 * as an adopted dispatcher runs both runs' hooks. */
volatile const __u16 run_tag = 0;

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
	h->run = run_tag;
	h->size = size;
	h->ktime = bpf_ktime_get_boot_ns();
}

/* The capabilities and namespaces of a process at its first exec after
 * its fork, keyed by tgid, as Tetragon records them: process.c writes the
 * entry at that exec (a forked child holds a copy of its parent's until
 * then) and deletes it at exit, and user space writes the processes that
 * were already running when the agent started. Later execs keep it, so
 * that `unshare --mount prog` or an exec of a setuid binary is a change. matchCapabilityChanges
 * and matchNamespaceChanges compare the caller's with it (lib/hook.h). One
 * map: user space hands process.c's to every hook object
 * (MapReplacements). Not preallocated: room for many processes, memory for
 * the live ones. */
#define EXEC_CREDS_MAX 65536

struct exec_creds {
	__u64 caps[3]; /* effective, inheritable, permitted (enum cap_set) */
	__u32 ns[10];  /* inode numbers, in enum ns_kind order (lib/hook.h) */
	__u32 flags;   /* EXEC_CREDS_* */
	__u32 pad;
};

/* exec_creds.flags: a fork's copy of the parent's record, which the child's
 * first exec replaces */
#define EXEC_CREDS_FORKED 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_CREDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_creds);
} exec_creds SEC(".maps");
