/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Path resolution without bpf_d_path (only fentry/LSM programs may call it):
 * walk dentry->d_parent and the mount tree with bpf_loop, prepending names into
 * a per-CPU scratch buffer, and stop at the task's root so a process in a
 * container sees the path as it sees it. */
#pragma once

#include "common.h"

#define PATH_MAX_LEN 4096
#define PATH_MASK (PATH_MAX_LEN - 1)
#define NAME_MAX_LEN 255
#define PATH_WALK_STEPS 1024

#define PATH_F_TRUNCATED 1
#define PATH_F_DELETED 2
#define PATH_F_UNREACHABLE 4 /* outside the task's root */

struct path_scratch {
	/* twice the path size so that an offset masked to PATH_MASK plus a
	 * name of up to NAME_MAX_LEN bytes always stays in bounds */
	char buf[PATH_MAX_LEN * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} path_heap SEC(".maps");

struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;
	__u32 flags;
	bool done;
};

static __always_inline struct mount *real_mount(struct vfsmount *vfsmnt)
{
	return (struct mount *)((char *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/* prepend_name writes "/" and d's name in front of the path built so far;
 * false when it does not fit (the path is then marked truncated and done) */
static __always_inline bool prepend_name(struct walk_ctx *c, struct dentry *d)
{
	struct path_scratch *s;
	struct qstr name;
	__u32 zero = 0, len, pos;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s)
		return false;
	name = BPF_CORE_READ(d, d_name);
	len = name.len;
	if (len > NAME_MAX_LEN)
		len = NAME_MAX_LEN;
	/* keep pos >= 1 so the final length fits in PATH_MASK */
	if (c->pos < len + 2) {
		c->flags |= PATH_F_TRUNCATED;
		c->done = true;
		return false;
	}
	pos = c->pos - len;
	/* clang drops a mask it can prove redundant, and 6.12's verifier then
	 * loses len's unsigned bound across the compare above: force it */
	barrier_var(len);
	len &= NAME_MAX_LEN;
	bpf_probe_read_kernel(&s->buf[pos & PATH_MASK], len, name.name);
	pos--;
	s->buf[pos & PATH_MASK] = '/';
	c->pos = pos;
	return true;
}

/* pseudo_file reports a file the kernel names with simple_dname(): a shmem
 * or hugetlbfs file made by alloc_file_pseudo() (memfd_create, SysV shared
 * memory, shared anonymous mappings). Its dentry has no parent and sits on
 * an internal mount no mount tree reaches, so walking up finds nothing; the
 * kernel's d_path() (and so /proc/PID/exe) calls it "/NAME (deleted)", with
 * NAME "memfd:<name>" for a memfd. The dentry operations are checked first:
 * ordinary tmpfs files have none with d_dname. */
static __always_inline bool pseudo_file(struct dentry *d)
{
	const struct dentry_operations *ops = BPF_CORE_READ(d, d_op);
	unsigned long magic;

	if (!ops || !BPF_CORE_READ(ops, d_dname))
		return false;
	magic = BPF_CORE_READ(d, d_sb, s_magic);
	return magic == 0x01021994 /* TMPFS_MAGIC */ || magic == 0x958458f6 /* HUGETLBFS_MAGIC */;
}

static long path_walk_step(__u32 i, void *data)
{
	struct walk_ctx *c = data;
	struct dentry *d = c->dentry;
	struct vfsmount *vm = c->vfsmnt;
	struct dentry *parent, *mnt_root;

	if (d == c->root_dentry && vm == c->root_mnt) {
		c->done = true;
		return 1;
	}
	mnt_root = BPF_CORE_READ(vm, mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		struct mount *m = c->mnt;
		struct mount *mp;

		/* no mount given: the path within the dentry's file system */
		if (!vm) {
			c->done = true;
			return 1;
		}
		mp = BPF_CORE_READ(m, mnt_parent);
		if (m != mp) {
			/* cross to the mount point in the parent mount */
			c->dentry = BPF_CORE_READ(m, mnt_mountpoint);
			c->mnt = mp;
			c->vfsmnt = (struct vfsmount *)((char *)mp + bpf_core_field_offset(struct mount, mnt));
			return 0;
		}
		/* the global root, without meeting the task's root */
		if (d != c->root_dentry)
			c->flags |= PATH_F_UNREACHABLE;
		c->done = true;
		return 1;
	}

	if (!prepend_name(c, d))
		return 1;
	c->dentry = parent;
	return 0;
}

/* resolve_path writes the absolute path of (vfsmnt, dentry), as seen from
 * task's root, to the scratch buffer and returns its offset there; the path
 * runs from that offset to PATH_MAX_LEN (so its length is PATH_MAX_LEN - off).
 * With a NULL vfsmnt it is the path from the root of dentry's file system
 * (a kprobe's struct dentry * argument carries no mount). */
static __always_inline __u32 resolve_path(struct task_struct *task, struct vfsmount *vfsmnt,
					  struct dentry *dentry, __u32 *flags)
{
	struct path_scratch *s;
	struct walk_ctx c = {};
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s)
		return PATH_MAX_LEN;
	c.dentry = dentry;
	c.vfsmnt = vfsmnt;
	c.mnt = real_mount(vfsmnt);
	c.root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	c.root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	c.pos = PATH_MAX_LEN;

	if (pseudo_file(dentry)) {
		/* the " (deleted)" simple_dname() always appends is the
		 * deleted flag */
		c.flags |= PATH_F_DELETED;
		prepend_name(&c, dentry);
		c.done = true;
		goto out;
	}

	/* d_unlinked(): unhashed and not a root */
	if (!BPF_CORE_READ(dentry, d_hash.pprev) && BPF_CORE_READ(dentry, d_parent) != dentry)
		c.flags |= PATH_F_DELETED;

	bpf_loop(PATH_WALK_STEPS, path_walk_step, &c, 0);
out:
	if (!c.done)
		c.flags |= PATH_F_TRUNCATED;
	if (c.pos == PATH_MAX_LEN) {
		c.pos--;
		s->buf[c.pos & PATH_MASK] = '/';
	}
	*flags |= c.flags;
	return c.pos;
}
