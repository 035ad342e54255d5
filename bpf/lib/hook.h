/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every TracingPolicy hook object shares, whatever feeds it (raw
 * syscall tracepoints in generic.c, kprobes in kprobe.c): the configuration
 * layout (arguments, selectors as data), the record layout, string matching
 * through the LPM trie, selector evaluation, and the actions and record
 * posting. A selector therefore behaves the same whichever mechanism serves
 * the hook, and user space encodes one configuration and decodes one record
 * format (OP_GENERIC) for all of them. */
#pragma once

#include "common.h"
#include "path.h"

#define MAX_ARGS 5
#define MAX_SELECTORS 5
#define MAX_MATCH_ARGS 5
#define MAX_VALUES 8
#define MAX_STRS 2
#define STR_LEN PATH_MAX_LEN
#define LPM_DATA 255

enum gen_stat {
	GS_CALLS = 0,    /* calls seen (of a mapped syscall, or of the function) */
	GS_MATCHED = 1,  /* calls a selector matched */
	GS_POSTED = 2,   /* records written */
	GS_DROPS = 3,    /* records lost: ring buffer full */
	GS_SIGNALS = 4,  /* Sigkill/Signal actions taken */
	GS_CACHED = 5,   /* calls decided by the verdict cache */
	GS_MAX = 8,
};

DEFINE_STATS(GS_MAX)

/* Where an argument comes from. "reg" is the syscall argument register for
 * the syscall-tracepoint mapping and the function parameter index for a
 * kprobe. */
enum arg_src {
	SRC_NONE = 0,
	SRC_REG,       /* integer argument reg */
	SRC_RET,       /* the return value */
	SRC_REG_FILE,  /* the file behind the fd in argument reg */
	SRC_RET_FILE,  /* the file behind the returned fd */
	SRC_VAR_FILE,  /* the file behind the fd the syscall variant names */
	SRC_VAR_MASK,  /* the access mask the syscall variant implies */
	SRC_REG_USTR,  /* a user-space string in argument reg */
	SRC_VAR_PATH,  /* the variant's file, or its user-space path string */
	/* kprobe parameters that are kernel pointers */
	SRC_REG_KFILE,    /* struct file * */
	SRC_REG_KPATH,    /* struct path * */
	SRC_REG_DENTRY,   /* struct dentry *: its path within its file system */
	SRC_REG_STR,      /* char *, kernel or user memory */
	SRC_REG_FILENAME, /* struct filename * */
};

enum arg_type {
	T_INT = 1,
	T_PATH = 2, /* string: resolved path or user string */
	T_FD = 3,   /* integer fd and the path of its file */
};

enum match_op {
	MOP_EQUAL = 1,
	MOP_NOT_EQUAL,
	MOP_PREFIX,
	MOP_NOT_PREFIX,
	MOP_MASK,
	MOP_GT,
	MOP_LT,
	MOP_POSTFIX,
	MOP_NOT_POSTFIX,
};

#define ACT_POST 1
#define ACT_SIGKILL 2
#define ACT_SIGNAL 4
#define ACT_OVERRIDE 8 /* fmod_ret only: the function returns err instead */

struct arg_conf {
	__u8 src;
	__u8 reg;
	__u8 type;
	__u8 str; /* string slot for T_PATH / T_FD */
};

struct match_arg {
	__u8 arg;
	__u8 op;
	__u8 nvals;
	__u8 pad;
	__u32 slot; /* LPM slot for string operators */
	__s64 vals[MAX_VALUES];
};

struct selector {
	__u8 nmatch;
	__u8 actions;
	__u8 sig;
	__u8 pad;
	__s32 err; /* Override's return value */
	struct match_arg m[MAX_MATCH_ARGS];
};

struct gen_conf {
	__u32 hook_id;
	__u8 nargs;
	__u8 nsel;
	/* the verdict depends only on the variant's file path and mask, so a
	 * "no selector matched" can be remembered per file (generic.c) */
	__u8 cacheable;
	__u8 pad;
	struct arg_conf args[MAX_ARGS];
	struct selector sel[MAX_SELECTORS];
};

struct gen_rec {
	struct rec_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 hook_id;
	__u32 syscall;
	__u32 sel;
	__u32 actions;
	__s64 ret;
	__s64 ints[MAX_ARGS];
	__u16 str_len[MAX_STRS];
	__u16 str_flags[MAX_STRS];
	char data[MAX_STRS * STR_LEN];
};

/* the LPM trie allows 256 data bytes: one for the slot, 255 for the string */
struct lpm_key {
	__u32 prefixlen;
	__u8 slot;
	__u8 data[LPM_DATA];
};

const struct gen_rec *unused_gen_rec __attribute__((unused));
const struct gen_conf *unused_gen_conf __attribute__((unused));
const struct lpm_key *unused_lpm_key __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_conf);
} conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} strings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_rec);
} rec_heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lpm_key);
} key_heap SEC(".maps");

/* reg_arg reads syscall argument i from the user registers a syscall
 * entered with (x86_64: rdi, rsi, rdx, r10, r8, r9). */
static __always_inline long reg_arg(struct pt_regs *regs, __u32 i)
{
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	case 5: return BPF_CORE_READ(regs, r9);
	}
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct files_struct *files = BPF_CORE_READ(t, files);
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file **arr;
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd & 0xfffff]);
	return f;
}

/* put_path resolves (mnt, dentry) into string slot s of r. A NULL mnt gives
 * the dentry's path within its file system. */
static __always_inline void put_path(struct gen_rec *r, __u32 s, struct task_struct *t,
				     struct vfsmount *mnt, struct dentry *dentry)
{
	struct path_scratch *scratch;
	__u32 zero = 0, pflags = 0, pos, len;

	pos = resolve_path(t, mnt, dentry, &pflags);
	scratch = bpf_map_lookup_elem(&path_heap, &zero);
	if (!scratch || pos >= PATH_MAX_LEN)
		return;
	len = (PATH_MAX_LEN - pos) & PATH_MASK;
	bpf_probe_read_kernel(&r->data[(s & 1) * STR_LEN], len, &scratch->buf[pos & PATH_MASK]);
	r->str_len[s & 1] = len;
	r->str_flags[s & 1] = pflags;
}

/* put_file_path resolves f's path into string slot s of r. */
static __always_inline void put_file_path(struct gen_rec *r, __u32 s, struct task_struct *t, struct file *f)
{
	if (!f) {
		r->str_len[s & 1] = 0;
		return;
	}
	put_path(r, s, t, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry));
}

static __always_inline void put_user_str(struct gen_rec *r, __u32 s, long uptr)
{
	long n = bpf_probe_read_user_str(&r->data[(s & 1) * STR_LEN], STR_LEN, (void *)uptr);

	/* length without the NUL */
	r->str_len[s & 1] = n > 0 ? (n - 1) & PATH_MASK : 0;
	r->str_flags[s & 1] = n == STR_LEN ? PATH_F_TRUNCATED : 0;
}

struct rev_ctx {
	__u32 base;
	__u32 len;
};

/* rev_byte puts byte i from the end of a record string at key position i.
 * Under bpf_loop, so the verifier checks one byte, not 254. */
static long rev_byte(__u32 i, void *data)
{
	struct rev_ctx *rc = data;
	struct lpm_key *k;
	struct gen_rec *r;
	__u32 zero = 0;

	k = bpf_map_lookup_elem(&key_heap, &zero);
	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!k || !r || i >= rc->len)
		return 1;
	/* a separate bound the compiler cannot fold into the one above */
	barrier_var(i);
	if (i >= LPM_DATA)
		return 1;
	k->data[i] = r->data[(rc->base + rc->len - 1 - i) & (MAX_STRS * STR_LEN - 1)];
	return 0;
}

/* match_str looks string slot s of r up among the values of match slot.
 * Equal entries are stored with their NUL, so they match only whole
 * strings; Prefix entries without, so they match any string they start.
 * Postfix entries are stored reversed and looked up with the string's
 * reversed tail. */
static __always_inline bool match_str(struct gen_rec *r, __u32 s, __u32 slot, bool postfix)
{
	struct lpm_key *k;
	__u32 zero = 0, len = r->str_len[s & 1];

	k = bpf_map_lookup_elem(&key_heap, &zero);
	if (!k)
		return false;
	if (postfix) {
		struct rev_ctx rc = {.base = (s & 1) * STR_LEN, .len = len};

		if (len > LPM_DATA)
			len = LPM_DATA;
		bpf_loop(len, rev_byte, &rc, 0);
		k->prefixlen = 8 + len * 8;
	} else {
		if (len > LPM_DATA - 1)
			len = LPM_DATA - 1;
		bpf_probe_read_kernel(k->data, LPM_DATA, &r->data[(s & 1) * STR_LEN]);
		k->data[len] = 0;
		k->prefixlen = 8 + (len + 1) * 8;
	}
	k->slot = slot;
	return bpf_map_lookup_elem(&strings, k) != NULL;
}

static __always_inline bool match_int(__s64 x, struct match_arg *m)
{
	bool hit = false;

	for (int i = 0; i < MAX_VALUES; i++) {
		if (i >= m->nvals)
			break;
		switch (m->op) {
		case MOP_EQUAL:
		case MOP_NOT_EQUAL:
			hit |= x == m->vals[i];
			break;
		case MOP_MASK:
			hit |= (x & m->vals[i]) != 0;
			break;
		case MOP_GT:
			hit |= x > m->vals[i];
			break;
		case MOP_LT:
			hit |= x < m->vals[i];
			break;
		}
	}
	return m->op == MOP_NOT_EQUAL ? !hit : hit;
}

struct match_ctx {
	struct gen_conf *c;
	struct gen_rec *r;
	__u32 sel;
	bool ok;
};

/* eval_match checks matchArgs entry j of one selector; it stops the loop
 * at the first entry that does not hold. */
static long eval_match(__u32 j, void *data)
{
	struct match_ctx *x = data;
	/* masked to 3 bits first: the verifier sees the index arrive as a full
	 * 64-bit register, and a compare on a zero-extended copy would not
	 * bound it */
	__u32 mi = j & 7, si = x->sel & 7;
	struct selector *sel;
	struct match_arg *m;
	struct arg_conf *a;
	__u32 ai;
	bool hit;

	if (mi >= MAX_MATCH_ARGS || si >= MAX_SELECTORS) {
		x->ok = false;
		return 1;
	}
	sel = &x->c->sel[si];
	m = &sel->m[mi];
	ai = m->arg;
	if (ai >= MAX_ARGS) {
		x->ok = false;
		return 1;
	}
	a = &x->c->args[ai];
	if (a->type != T_INT) {
		hit = match_str(x->r, a->str, m->slot, m->op == MOP_POSTFIX || m->op == MOP_NOT_POSTFIX);
		if (m->op == MOP_NOT_PREFIX || m->op == MOP_NOT_EQUAL || m->op == MOP_NOT_POSTFIX)
			hit = !hit;
	} else {
		hit = match_int(x->r->ints[ai], m);
	}
	if (!hit) {
		x->ok = false;
		return 1;
	}
	return 0;
}

struct select_ctx {
	struct gen_conf *c;
	struct gen_rec *r;
	int found;
};

/* eval_selector checks selector s; it stops the loop at the first one
 * whose every matchArgs entry holds. */
static long eval_selector(__u32 s, void *data)
{
	struct select_ctx *x = data;
	struct match_ctx m = {.c = x->c, .r = x->r, .sel = s, .ok = true};

	if (s >= MAX_SELECTORS)
		return 1;
	bpf_loop(x->c->sel[s].nmatch, eval_match, &m, 0);
	if (!m.ok)
		return 0;
	x->found = s;
	return 1;
}

/* select returns the index of the first selector whose every matchArgs
 * entry holds, or -1. No selectors means every call matches. The loops
 * run under bpf_loop: the verifier then checks one selector and one match
 * instead of every combination of the unrolled loops, which kept a hook's
 * load in the seconds. */
static __always_inline int select(struct gen_conf *c, struct gen_rec *r)
{
	struct select_ctx x = {.c = c, .r = r, .found = -1};

	if (c->nsel == 0)
		return MAX_SELECTORS;
	bpf_loop(c->nsel, eval_selector, &x, 0);
	return x.found;
}

/* act_and_post carries out the actions of selector s (MAX_SELECTORS: the
 * hook has none, so Post) for the current task, and writes r to the ring
 * buffer when they include Post. */
static __always_inline void act_and_post(struct gen_conf *c, struct gen_rec *r, int s, __u64 id, long nr, long ret)
{
	__u32 size, acts;

	stat_inc(GS_MATCHED);
	acts = s < MAX_SELECTORS ? c->sel[s].actions : ACT_POST;
	if (acts & ACT_SIGKILL) {
		bpf_send_signal(9);
		stat_inc(GS_SIGNALS);
	} else if ((acts & ACT_SIGNAL) && s < MAX_SELECTORS) {
		bpf_send_signal(c->sel[s].sig);
		stat_inc(GS_SIGNALS);
	}
	if (!(acts & ACT_POST))
		return;
	r->pid = id >> 32;
	r->tid = (__u32)id;
	r->hook_id = c->hook_id;
	r->syscall = nr;
	r->sel = s;
	r->actions = acts;
	r->ret = ret;
	/* send only the used part of data */
	if (r->str_len[1])
		size = offsetof(struct gen_rec, data) + STR_LEN + (r->str_len[1] & PATH_MASK);
	else
		size = offsetof(struct gen_rec, data) + (r->str_len[0] & PATH_MASK);
	if (size > sizeof(*r))
		size = sizeof(*r);
	rec_init(&r->hdr, OP_GENERIC, size);
	if (bpf_ringbuf_output(&events, r, size, 0))
		stat_inc(GS_DROPS);
	else
		stat_inc(GS_POSTED);
}
