//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One TracingPolicy hook served through the raw syscall tracepoints: the
 * same object is loaded once per hook and configured by data (the syscall
 * table, argument sources and selectors), never by generated code.
 *
 * A call that is not in the syscall table costs one array lookup; a call
 * that matches no selector writes nothing to the ring buffer. */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SYS_TABLE_LEN 512
#define MAX_ARGS 5
#define MAX_SELECTORS 5
#define MAX_MATCH_ARGS 5
#define MAX_VALUES 8
#define MAX_STRS 2
#define STR_LEN PATH_MAX_LEN
#define LPM_DATA 255

enum gen_stat {
	GS_CALLS = 0,    /* calls of a mapped syscall */
	GS_MATCHED = 1,  /* calls a selector matched */
	GS_POSTED = 2,   /* records written */
	GS_DROPS = 3,    /* records lost: ring buffer full */
	GS_SIGNALS = 4,  /* Sigkill/Signal actions taken */
	GS_CACHED = 5,   /* calls decided by the verdict cache */
	GS_MAX = 8,
};

DEFINE_STATS(GS_MAX)

/* Where an argument comes from. */
enum arg_src {
	SRC_NONE = 0,
	SRC_REG,       /* syscall argument reg (integer) */
	SRC_RET,       /* the syscall's return value */
	SRC_REG_FILE,  /* the file behind the fd in syscall argument reg */
	SRC_RET_FILE,  /* the file behind the returned fd */
	SRC_VAR_FILE,  /* the file behind the fd the syscall variant names */
	SRC_VAR_MASK,  /* the access mask the syscall variant implies */
	SRC_REG_USTR,  /* a user-space string in syscall argument reg */
	SRC_VAR_PATH,  /* the variant's file, or its user-space path string */
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

#define VAR_FD_RET 6  /* variant fd source: the return value */
#define VAR_NO_FD 7   /* variant has no fd: use the user string in reg 0 */

struct sys_variant {
	__u8 fd_src; /* register index 0..5, VAR_FD_RET or VAR_NO_FD */
	__u8 mask;
	__u8 pad[2];
};

#define SE_ENTER 1
#define SE_EXIT 2
#define SE_RET_OK 4 /* only successful calls (ret >= 0) */
#define SE_NEED_FILE 8 /* only calls whose variant fd is an open file (mmap) */

struct sys_entry {
	__u8 flags;
	__u8 nvariants;
	__u8 pad[2];
	struct sys_variant v[2];
};

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
	struct match_arg m[MAX_MATCH_ARGS];
};

struct gen_conf {
	__u32 hook_id;
	__u8 nargs;
	__u8 nsel;
	/* the verdict depends only on the variant's file path and mask, so a
	 * "no selector matched" can be remembered per file (see verdicts) */
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
const struct sys_entry *unused_sys_entry __attribute__((unused));
const struct lpm_key *unused_lpm_key __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYS_TABLE_LEN);
	__type(key, __u32);
	__type(value, struct sys_entry);
} sys_table SEC(".maps");

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

/* Verdict cache: resolving a path costs a dentry walk, which a read-heavy
 * workload would pay on every read. A file whose path matched no selector
 * is remembered by what determines its path as this task sees it (dentry,
 * mount, the task's root) and the access mask. Anything that can change a
 * cached file's path (rename, mount changes, chroot) bumps the generation,
 * which invalidates every entry at once. */
struct verdict_key {
	__u64 dentry;
	__u64 mnt;
	__u64 root;
	__u64 mask;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct verdict_key);
	__type(value, __u64); /* generation */
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} generation SEC(".maps");

/* x86_64 syscalls that can change which path a dentry has */
static __always_inline bool changes_paths(long nr)
{
	switch (nr) {
	case 82:  /* rename */
	case 264: /* renameat */
	case 316: /* renameat2 */
	case 165: /* mount */
	case 166: /* umount2 */
	case 155: /* pivot_root */
	case 161: /* chroot */
	case 272: /* unshare */
	case 308: /* setns */
	case 429: /* move_mount */
	case 442: /* mount_setattr */
		return true;
	}
	return false;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lpm_key);
} key_heap SEC(".maps");

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

/* file_identity fills the verdict key of the file behind fd with as few
 * helper calls as possible: it runs on every mapped call (every read and
 * write for security_file_permission), so the task walk uses direct BTF
 * loads and the file is read with two probe reads. Returns false when fd
 * is not an open file. */
static __always_inline bool file_identity(long fd, struct verdict_key *vk)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct file *f = NULL;
	struct path p = {};

	if (fd < 0 || fd >= fdt->max_fds)
		return false;
	bpf_probe_read_kernel(&f, sizeof(f), (void *)fdt->fd + (fd & 0xfffff) * sizeof(f));
	if (!f)
		return false;
	bpf_probe_read_kernel(&p, sizeof(p), __builtin_preserve_access_index(&f->f_path));
	vk->dentry = (__u64)p.dentry;
	vk->mnt = (__u64)p.mnt;
	vk->root = (__u64)t->fs->root.dentry;
	return true;
}

/* put_file_path resolves f's path into string slot s of r. */
static __always_inline void put_file_path(struct gen_rec *r, __u32 s, struct task_struct *t, struct file *f)
{
	struct path_scratch *scratch;
	__u32 zero = 0, pflags = 0, pos, len;

	if (!f) {
		r->str_len[s & 1] = 0;
		return;
	}
	pos = resolve_path(t, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), &pflags);
	scratch = bpf_map_lookup_elem(&path_heap, &zero);
	if (!scratch || pos >= PATH_MAX_LEN)
		return;
	len = (PATH_MAX_LEN - pos) & PATH_MASK;
	bpf_probe_read_kernel(&r->data[(s & 1) * STR_LEN], len, &scratch->buf[pos & PATH_MASK]);
	r->str_len[s & 1] = len;
	r->str_flags[s & 1] = pflags;
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

/* select returns the index of the first selector whose every matchArgs
 * entry holds, or -1. No selectors means every call matches. */
static __always_inline int select(struct gen_conf *c, struct gen_rec *r)
{
	if (c->nsel == 0)
		return MAX_SELECTORS;
	for (int s = 0; s < MAX_SELECTORS; s++) {
		struct selector *sel = &c->sel[s];
		bool ok = true;

		if (s >= c->nsel)
			break;
		for (int j = 0; j < MAX_MATCH_ARGS; j++) {
			struct match_arg *m = &sel->m[j];
			struct arg_conf *a;
			__u32 ai = m->arg;
			bool hit;

			if (j >= sel->nmatch)
				break;
			if (ai >= MAX_ARGS) {
				ok = false;
				break;
			}
			a = &c->args[ai];
			if (a->type != T_INT) {
				hit = match_str(r, a->str, m->slot,
						m->op == MOP_POSTFIX || m->op == MOP_NOT_POSTFIX);
				if (m->op == MOP_NOT_PREFIX || m->op == MOP_NOT_EQUAL || m->op == MOP_NOT_POSTFIX)
					hit = !hit;
			} else {
				hit = match_int(r->ints[ai], m);
			}
			if (!hit) {
				ok = false;
				break;
			}
		}
		if (ok)
			return s;
	}
	return -1;
}

static __always_inline void fill_args(struct gen_conf *c, struct gen_rec *r, struct pt_regs *regs,
				      struct sys_variant *v, long ret, struct task_struct *t)
{
	for (int i = 0; i < MAX_ARGS; i++) {
		struct arg_conf *a = &c->args[i];
		long fd;

		if (i >= c->nargs)
			break;
		r->ints[i] = 0;
		switch (a->src) {
		case SRC_REG:
			r->ints[i] = reg_arg(regs, a->reg);
			break;
		case SRC_RET:
			r->ints[i] = ret;
			break;
		case SRC_VAR_MASK:
			r->ints[i] = v->mask;
			break;
		case SRC_REG_USTR:
			put_user_str(r, a->str, reg_arg(regs, a->reg));
			break;
		case SRC_REG_FILE:
		case SRC_RET_FILE:
		case SRC_VAR_FILE:
		case SRC_VAR_PATH:
			if (a->src == SRC_REG_FILE)
				fd = reg_arg(regs, a->reg);
			else if (a->src == SRC_RET_FILE || v->fd_src == VAR_FD_RET)
				fd = ret;
			else if (v->fd_src == VAR_NO_FD) {
				put_user_str(r, a->str, reg_arg(regs, 0));
				break;
			} else
				fd = reg_arg(regs, v->fd_src);
			r->ints[i] = fd;
			put_file_path(r, a->str, t, fd_file(t, fd));
			break;
		}
	}
}

struct variant_ctx {
	struct pt_regs *regs;
	struct sys_entry *e;
	struct gen_conf *c;
	struct gen_rec *r;
	long nr;
	long ret;
	__u64 id;
};

/* handle_variant evaluates one reading of the call. It runs under bpf_loop
 * so the verifier checks it once, not once per variant. */
static long handle_variant(__u32 vi, void *data)
{
	struct variant_ctx *x = data;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct gen_conf *c = x->c;
	struct gen_rec *r = x->r;
	struct verdict_key vk = {};
	struct sys_variant *v;
	__u64 gen_before = 0;
	__u32 zero = 0, size, acts;
	int s;

	if (vi >= 2)
		return 1;
	v = &x->e->v[vi];
	if ((x->e->flags & SE_NEED_FILE) && v->fd_src < 6 && !fd_file(t, reg_arg(x->regs, v->fd_src)))
		return 0;
	if (c->cacheable && v->fd_src != VAR_NO_FD) {
		__u64 *gen = bpf_map_lookup_elem(&generation, &zero), *seen;

		vk.mask = v->mask;
		if (gen)
			gen_before = *gen;
		if (file_identity(v->fd_src == VAR_FD_RET ? x->ret : reg_arg(x->regs, v->fd_src & 7), &vk)) {
			seen = bpf_map_lookup_elem(&verdicts, &vk);
			if (gen && seen && *seen == gen_before) {
				stat_inc(GS_CACHED);
				return 0;
			}
		}
	}
	r->str_len[0] = r->str_len[1] = 0;
	r->str_flags[0] = r->str_flags[1] = 0;
	fill_args(c, r, x->regs, v, x->ret, t);
	s = select(c, r);
	if (s < 0) {
		/* stored with the generation read before the path was resolved:
		 * a rename meanwhile makes the entry stale */
		if (c->cacheable && v->fd_src != VAR_NO_FD && vk.dentry)
			bpf_map_update_elem(&verdicts, &vk, &gen_before, BPF_ANY);
		return 0;
	}
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
		return 0;
	r->pid = x->id >> 32;
	r->tid = (__u32)x->id;
	r->hook_id = c->hook_id;
	r->syscall = x->nr;
	r->sel = s;
	r->actions = acts;
	r->ret = x->ret;
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
	return 0;
}

static __always_inline int handle(struct pt_regs *regs, long nr, long ret, __u8 when)
{
	struct variant_ctx x = {.regs = regs, .nr = nr, .ret = ret};
	__u32 zero = 0, key = nr;

	if (nr < 0 || nr >= SYS_TABLE_LEN)
		return 0;
	if (changes_paths(nr)) {
		__u64 *gen = bpf_map_lookup_elem(&generation, &zero);

		if (gen)
			__sync_fetch_and_add(gen, 1);
	}
	x.e = bpf_map_lookup_elem(&sys_table, &key);
	if (!x.e || !(x.e->flags & when))
		return 0;
	if ((x.e->flags & SE_RET_OK) && ret < 0)
		return 0;
	x.c = bpf_map_lookup_elem(&conf, &zero);
	x.r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!x.c || !x.r)
		return 0;
	stat_inc(GS_CALLS);
	x.id = bpf_get_current_pid_tgid();
	bpf_loop(x.e->nvariants, handle_variant, &x, 0);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(gen_sys_enter, struct pt_regs *regs, long id)
{
	return handle(regs, id, 0, SE_ENTER);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(gen_sys_exit, struct pt_regs *regs, long ret)
{
	return handle(regs, BPF_CORE_READ(regs, orig_ax), ret, SE_EXIT);
}
