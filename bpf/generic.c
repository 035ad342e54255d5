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
#include "lib/hook.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SYS_TABLE_LEN 512

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
/* A return probe on the mapped function: its return value is derived from
 * the syscall's at sys_exit. A syscall that succeeded got past the
 * function, which therefore returned 0. A failed one gives no record unless
 * SE_REFUSALS says its EACCES/EPERM can only be the function's refusal:
 * otherwise the error may come from a step before the function (which then
 * never ran) or after it (which then returned 0). docs/mechanisms.md has
 * the derivation per function. */
#define SE_FUNC_RET 16
#define SE_REFUSALS 32

#define EPERM 1
#define EACCES 13

struct sys_entry {
	__u8 flags;
	__u8 nvariants;
	__u8 pad[2];
	struct sys_variant v[2];
};

const struct sys_entry *unused_sys_entry __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYS_TABLE_LEN);
	__type(key, __u32);
	__type(value, struct sys_entry);
} sys_table SEC(".maps");

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

/* put_user_sockaddr copies the struct sockaddr_in or sockaddr_in6 a
 * syscall was given (connect, bind, sendto) into string slot s of r, as
 * kprobe.c does: selectors (match_sock) and user space read the family
 * first. */
static __always_inline void put_user_sockaddr(struct gen_rec *r, __u32 s, long uptr)
{
	char *dst = &r->data[(s & 1) * STR_LEN];

	if (bpf_probe_read_user(dst, sizeof(struct sockaddr_in6), (void *)uptr)) {
		r->str_len[s & 1] = 0;
		return;
	}
	r->str_len[s & 1] = sizeof(struct sockaddr_in6);
}

struct fill_ctx {
	struct gen_conf *c;
	struct gen_rec *r;
	struct pt_regs *regs;
	struct sys_variant *v;
	struct task_struct *t;
	long ret;
};

/* fill_arg reads argument i of the call into the record. Under bpf_loop,
 * so the verifier checks one argument's path resolution, not five. */
static long fill_arg(__u32 idx, void *data)
{
	struct fill_ctx *x = data;
	/* masked first: see eval_match in lib/hook.h */
	__u32 i = idx & 7;
	struct gen_rec *r = x->r;
	struct sys_variant *v = x->v;
	struct arg_conf *a;
	long fd;

	if (i >= MAX_ARGS)
		return 1;
	a = &x->c->args[i];
	r->ints[i] = 0;
	switch (a->src) {
	case SRC_REG:
		r->ints[i] = reg_arg(x->regs, a->reg);
		break;
	case SRC_RET:
		r->ints[i] = x->ret;
		break;
	case SRC_VAR_MASK:
		r->ints[i] = v->mask;
		break;
	case SRC_REG_USTR:
		put_user_str(r, a->str, reg_arg(x->regs, a->reg));
		break;
	case SRC_REG_SOCKADDR:
		put_user_sockaddr(r, a->str, reg_arg(x->regs, a->reg));
		break;
	case SRC_REG_FILE:
	case SRC_RET_FILE:
	case SRC_VAR_FILE:
	case SRC_VAR_PATH:
		if (a->src == SRC_REG_FILE)
			fd = reg_arg(x->regs, a->reg);
		else if (a->src == SRC_RET_FILE || v->fd_src == VAR_FD_RET)
			fd = x->ret;
		else if (v->fd_src == VAR_NO_FD) {
			put_user_str(r, a->str, reg_arg(x->regs, 0));
			break;
		} else
			fd = reg_arg(x->regs, v->fd_src);
		r->ints[i] = fd;
		put_file_path(r, a->str, x->t, fd_file(x->t, fd));
		break;
	}
	return 0;
}

/* fill_args reads the call's arguments into the record. Not inlined: its
 * frame is then not under the selector evaluation's, whose chain of
 * bpf_loop callbacks and functions must fit the 512-byte combined stack
 * that 6.1's verifier checks. */
static __noinline void fill_args(struct gen_conf *c, struct gen_rec *r, struct pt_regs *regs,
				 struct sys_variant *v, long ret)
{
	struct fill_ctx x = {.c = c, .r = r, .regs = regs, .v = v, .ret = ret,
			     .t = (struct task_struct *)bpf_get_current_task()};

	bpf_loop(c->nargs, fill_arg, &x, 0);
}

struct variant_ctx {
	struct pt_regs *regs;
	struct sys_entry *e;
	struct gen_conf *c;
	struct gen_rec *r;
	long nr;
	long ret;  /* the syscall's return (0 at entry) */
	long fret; /* the value selectors and the record see as the return */
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
	__u32 zero = 0;
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
	fill_args(c, r, x->regs, v, x->ret);
	s = select(c, r, x->fret);
	if (s < 0) {
		/* stored with the generation read before the path was resolved:
		 * a rename meanwhile makes the entry stale */
		if (c->cacheable && v->fd_src != VAR_NO_FD && vk.dentry)
			bpf_map_update_elem(&verdicts, &vk, &gen_before, BPF_ANY);
		return 0;
	}
	act_and_post(c, r, s, x->id, x->nr, x->fret);
	return 0;
}

#define NO_RET (-0x7fffffffffffffffL - 1) /* no syscall returns it */

/* func_ret returns the value selectors and the record see as the return
 * of a call that returned ret: the syscall's own, or with SE_FUNC_RET the
 * mapped function's as derived from it, NO_RET when the syscall's says
 * nothing certain. A global function: the verifier sees its result as one
 * unknown value, where inline, every distinct value (0, -EACCES, -EPERM,
 * the syscall's) would have it check the selector evaluation once more. */
__noinline long func_ret(long ret, __u32 flags)
{
	if (!(flags & SE_FUNC_RET))
		return ret;
	if (ret >= 0)
		return 0;
	if ((flags & SE_REFUSALS) && (ret == -EACCES || ret == -EPERM))
		return ret;
	return NO_RET;
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
	x.fret = func_ret(ret, x.e->flags);
	if (x.fret == NO_RET)
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
