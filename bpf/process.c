//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The base sensor: process exec, fork and exit from the scheduler's BTF
 * tracepoints, which every kernel this agent supports has (no kprobes). */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Indexes of the per-CPU counters user space reads for loss accounting. */
enum stat_index {
	STAT_RINGBUF_DROPS = 0,
	STAT_EXEC = 1,
	STAT_EXIT = 2,
	STAT_FORK = 3,
	STAT_MAX = 8,
};

DEFINE_STATS(STAT_MAX)

#define ARGS_MAX_LEN 8192
#define ARGS_MASK (ARGS_MAX_LEN - 1)
#define CGROUP_NAME_LEN 128
#define DATA_LEN (PATH_MAX_LEN * 2 + ARGS_MAX_LEN)

#define EXEC_F_TRUNC_ARGS 0x01
#define EXEC_F_TRUNC_BINARY 0x02
#define EXEC_F_TRUNC_CWD 0x04
#define EXEC_F_DELETED_BINARY 0x08
#define EXEC_F_NO_CWD 0x10
#define EXEC_F_ERR_ARGS 0x20

enum ns_index {
	NS_UTS,
	NS_IPC,
	NS_MNT,
	NS_PID,
	NS_PID_FOR_CHILDREN,
	NS_NET,
	NS_TIME,
	NS_TIME_FOR_CHILDREN,
	NS_CGROUP,
	NS_USER,
	NS_MAX,
};

struct exec_rec {
	struct rec_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 nspid;
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 auid;
	__u32 flags;
	__u64 cgroup_id;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	__u32 ns[NS_MAX];
	__u16 binary_len;
	__u16 cwd_len;
	__u32 args_len;
	char cgroup_name[CGROUP_NAME_LEN];
	char data[DATA_LEN];
};

struct exit_rec {
	struct rec_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 code; /* wait status: exit code << 8 | signal */
	__u32 pad;
};

struct fork_rec {
	struct rec_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 nspid;
};

/* bpf2go emits Go types for these */
const struct exec_rec *unused_exec __attribute__((unused));
const struct exit_rec *unused_exit __attribute__((unused));
const struct fork_rec *unused_fork __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_rec);
} exec_heap SEC(".maps");

static __always_inline __u64 read_cap(kernel_cap_t *cap)
{
	__u64 v = 0;

	/* 8 bytes on every kernel: {u64 val} since 6.3, {u32 cap[2]} before */
	bpf_core_read(&v, sizeof(v), cap);
	return v;
}

static __always_inline __u32 task_nspid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]);
	return up.nr;
}

static __always_inline void fill_namespaces(struct exec_rec *e, struct task_struct *task)
{
	struct nsproxy *ns = BPF_CORE_READ(task, nsproxy);
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	e->ns[NS_UTS] = BPF_CORE_READ(ns, uts_ns, ns.inum);
	e->ns[NS_IPC] = BPF_CORE_READ(ns, ipc_ns, ns.inum);
	e->ns[NS_MNT] = BPF_CORE_READ(ns, mnt_ns, ns.inum);
	bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]);
	e->ns[NS_PID] = BPF_CORE_READ(up.ns, ns.inum);
	e->nspid = up.nr;
	e->ns[NS_PID_FOR_CHILDREN] = BPF_CORE_READ(ns, pid_ns_for_children, ns.inum);
	e->ns[NS_NET] = BPF_CORE_READ(ns, net_ns, ns.inum);
	e->ns[NS_TIME] = BPF_CORE_READ(ns, time_ns, ns.inum);
	e->ns[NS_TIME_FOR_CHILDREN] = BPF_CORE_READ(ns, time_ns_for_children, ns.inum);
	e->ns[NS_CGROUP] = BPF_CORE_READ(ns, cgroup_ns, ns.inum);
	e->ns[NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);
}

static __always_inline void fill_creds(struct exec_rec *e, struct task_struct *task)
{
	const struct cred *c = BPF_CORE_READ(task, cred);

	e->uid = BPF_CORE_READ(c, uid.val);
	e->gid = BPF_CORE_READ(c, gid.val);
	e->euid = BPF_CORE_READ(c, euid.val);
	e->egid = BPF_CORE_READ(c, egid.val);
	e->suid = BPF_CORE_READ(c, suid.val);
	e->sgid = BPF_CORE_READ(c, sgid.val);
	e->fsuid = BPF_CORE_READ(c, fsuid.val);
	e->fsgid = BPF_CORE_READ(c, fsgid.val);
	e->cap_permitted = read_cap((kernel_cap_t *)&c->cap_permitted);
	e->cap_effective = read_cap((kernel_cap_t *)&c->cap_effective);
	e->cap_inheritable = read_cap((kernel_cap_t *)&c->cap_inheritable);
	if (bpf_core_field_exists(task->loginuid))
		e->auid = BPF_CORE_READ(task, loginuid.val);
	else
		e->auid = (__u32)-1;
}

/* The leaf name of the task's cgroup on the default hierarchy (the container
 * id under Docker's cgroupfs driver, docker-<id>.scope under systemd); on a
 * v1-only host the default hierarchy is the root, so fall back to the first
 * v1 subsystem's cgroup. */
static __always_inline void fill_cgroup(struct exec_rec *e, struct task_struct *task)
{
	struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
	struct cgroup *cg = BPF_CORE_READ(cgroups, dfl_cgrp);
	const char *name;

	e->cgroup_id = BPF_CORE_READ(cg, kn, id);
	if (!BPF_CORE_READ(cg, level)) {
		struct cgroup_subsys_state *css = BPF_CORE_READ(cgroups, subsys[0]);

		if (css)
			cg = BPF_CORE_READ(css, cgroup);
	}
	name = BPF_CORE_READ(cg, kn, name);
	bpf_probe_read_kernel_str(e->cgroup_name, sizeof(e->cgroup_name), name);
}

/* copy_path appends a resolved path to e->data at off; returns its length */
static __always_inline __u32 copy_path(struct exec_rec *e, __u32 off, __u32 pos)
{
	struct path_scratch *s;
	__u32 zero = 0, len;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s || pos >= PATH_MAX_LEN)
		return 0;
	len = PATH_MAX_LEN - pos;
	bpf_probe_read_kernel(&e->data[off & (PATH_MAX_LEN * 2 - 1)], len & PATH_MASK,
			      &s->buf[pos & PATH_MASK]);
	return len & PATH_MASK;
}

/* record_exec_creds keeps the capabilities and namespaces the exec record
 * reports as the process's reference for the change filters (exec_creds
 * in lib/common.h), at its first exec after its fork. A full map leaves the
 * process without one: the change filters then never match it. */
static __always_inline void record_exec_creds(struct exec_rec *e)
{
	struct exec_creds v = {}, *old;
	__u32 i;

	old = bpf_map_lookup_elem(&exec_creds, &e->pid);
	if (old && !(old->flags & EXEC_CREDS_FORKED))
		return;

	v.caps[0] = e->cap_effective;
	v.caps[1] = e->cap_inheritable;
	v.caps[2] = e->cap_permitted;
	for (i = 0; i < NS_MAX && i < 10; i++)
		v.ns[i] = e->ns[i];
	bpf_map_update_elem(&exec_creds, &e->pid, &v, BPF_ANY);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_rec *e;
	struct file *file;
	struct mm_struct *mm;
	__u32 zero = 0, pflags = 0, pos, off, cwd_len, size;
	__u64 id = bpf_get_current_pid_tgid();
	unsigned long arg_start, arg_end, alen;

	e = bpf_map_lookup_elem(&exec_heap, &zero);
	if (!e)
		return 0;

	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->flags = 0;
	fill_creds(e, task);
	fill_namespaces(e, task);
	fill_cgroup(e, task);

	/* the binary actually running: for #! scripts the interpreter, whose
	 * argv then names the script */
	file = BPF_CORE_READ(bprm, file);
	pos = resolve_path(task, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry), &pflags);
	if (pflags & PATH_F_TRUNCATED)
		e->flags |= EXEC_F_TRUNC_BINARY;
	if (pflags & PATH_F_DELETED)
		e->flags |= EXEC_F_DELETED_BINARY;
	off = copy_path(e, 0, pos);
	e->binary_len = off;

	pflags = 0;
	pos = resolve_path(task, BPF_CORE_READ(task, fs, pwd.mnt), BPF_CORE_READ(task, fs, pwd.dentry), &pflags);
	if (pflags & PATH_F_TRUNCATED)
		e->flags |= EXEC_F_TRUNC_CWD;
	cwd_len = copy_path(e, off, pos);
	e->cwd_len = cwd_len;
	off += cwd_len;

	mm = BPF_CORE_READ(task, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	alen = arg_end - arg_start;
	if (arg_end < arg_start)
		alen = 0;
	if (alen > ARGS_MASK) {
		alen = ARGS_MASK;
		e->flags |= EXEC_F_TRUNC_ARGS;
	}
	off &= PATH_MAX_LEN * 2 - 1;
	if (bpf_probe_read_user(&e->data[off], alen & ARGS_MASK, (void *)arg_start) < 0) {
		e->flags |= EXEC_F_ERR_ARGS;
		alen = 0;
	}
	alen &= ARGS_MASK;
	e->args_len = alen;

	/* send only the used part of data: most records are a few hundred bytes */
	size = offsetof(struct exec_rec, data) + off + alen;
	if (size > sizeof(*e))
		size = sizeof(*e);
	rec_init(&e->hdr, OP_EXEC, size);
	record_exec_creds(e);
	stat_inc(STAT_EXEC);
	if (bpf_ringbuf_output(&events, e, size, 0))
		stat_inc(STAT_RINGBUF_DROPS);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct fork_rec *f;
	struct exec_creds *ec;
	__u32 tgid;

	/* threads share their process; only new processes matter */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	stat_inc(STAT_FORK);
	/* the child runs its parent's exec image: the same reference, until
	 * its first exec */
	tgid = BPF_CORE_READ(parent, tgid);
	ec = bpf_map_lookup_elem(&exec_creds, &tgid);
	if (ec) {
		struct exec_creds v = *ec;

		v.flags |= EXEC_CREDS_FORKED;
		tgid = BPF_CORE_READ(child, tgid);
		bpf_map_update_elem(&exec_creds, &tgid, &v, BPF_ANY);
	}
	f = bpf_ringbuf_reserve(&events, sizeof(*f), 0);
	if (!f) {
		stat_inc(STAT_RINGBUF_DROPS);
		return 0;
	}
	rec_init(&f->hdr, OP_FORK, sizeof(*f));
	f->pid = BPF_CORE_READ(child, tgid);
	f->tid = BPF_CORE_READ(child, pid);
	f->ppid = BPF_CORE_READ(parent, tgid);
	f->nspid = task_nspid(child);
	bpf_ringbuf_submit(f, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	struct exit_rec *x;
	__u32 code, tgid;

	/* one exit per process: only the last thread out reports it */
	if (BPF_CORE_READ(sig, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&exec_creds, &tgid);
	code = BPF_CORE_READ(task, exit_code);
	if (BPF_CORE_READ(sig, flags) & 0x00000004 /* SIGNAL_GROUP_EXIT */)
		code = BPF_CORE_READ(sig, group_exit_code);
	stat_inc(STAT_EXIT);
	x = bpf_ringbuf_reserve(&events, sizeof(*x), 0);
	if (!x) {
		stat_inc(STAT_RINGBUF_DROPS);
		return 0;
	}
	rec_init(&x->hdr, OP_EXIT, sizeof(*x));
	x->pid = BPF_CORE_READ(task, tgid);
	x->tid = BPF_CORE_READ(task, pid);
	x->code = code;
	x->pad = 0;
	bpf_ringbuf_submit(x, 0);
	return 0;
}
