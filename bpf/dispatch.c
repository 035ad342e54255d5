//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The syscall dispatcher: every TracingPolicy hook served through the raw
 * syscall tracepoints, of every policy, runs in these two programs. A hook
 * is data: its configuration (arguments, selectors, actions) is an entry
 * of confs, and each syscall's list in sys_lists names the hooks that map
 * it. Loading, replacing or removing a policy updates maps; the programs
 * are verified once, when the agent first needs them.
 *
 * The program attached to each direction is a filter that user space
 * generates with the mapped syscalls in its code: it returns for a call
 * no hook maps and otherwise jumps to the program that serves the call
 * (run_sys_enter, run_sys_exit). A set that changes after the filter is
 * attached goes into the direction's chain, to which the attached filter
 * jumps first. A call whose syscall no hook maps costs the filter's
 * comparisons; a call that matches no selector writes nothing to the ring
 * buffer. */
#define HOOK_SLOTS 4096
#define HOOK_STRINGS 65536
#define HOOK_CGROUPS 65536
#include "lib/common.h"
#include "lib/path.h"
#include "lib/hook.h"
#include "lib/syscalls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SYS_TABLE_LEN 512

/* a variant's fd source besides a register index 0..5 */
enum var_fd {
	VAR_FD_RET = 6, /* the return value */
	VAR_NO_FD = 7,  /* no fd: use the user string in reg 0 */
};

struct sys_variant {
	__u8 fd_src; /* register index 0..5, VAR_FD_RET or VAR_NO_FD */
	__u8 mask;
};

enum sys_flag {
	SE_ENTER = 1,
	SE_EXIT = 2,
	SE_RET_OK = 4,    /* only successful calls (ret >= 0) */
	SE_NEED_FILE = 8, /* only calls whose variant fd is an open file (mmap) */
	/* A return probe on the mapped function: its return value is derived
	 * from the syscall's at sys_exit. A syscall that succeeded got past
	 * the function, which therefore returned 0. A failed one gives no
	 * record unless SE_REFUSALS says its EACCES/EPERM can only be the
	 * function's refusal: otherwise the error may come from a step before
	 * the function (which then never ran) or after it (which then returned
	 * 0). docs/mechanisms.md has the derivation per function. */
	SE_FUNC_RET = 16,
	SE_REFUSALS = 32,
	/* the pair reads the call as the pair before it in the list does (the
	 * same arguments and variant): when that pair's reading is the
	 * record's, the arguments (a path, say) are not read again */
	SE_SAME_ARGS = 64,
};

const enum var_fd *unused_var_fd __attribute__((unused));
const enum sys_flag *unused_sys_flag __attribute__((unused));

#define EPERM 1
#define EACCES 13

/* One reading of a call by one hook: the hook's configuration (confs
 * key), the SE_* flags of its mapping, and the variant. */
struct sys_pair {
	__u32 slot;
	__u8 flags;
	__u8 vi; /* the variant's index: the list's verdict cache entry */
	__u8 fd_src;
	__u8 mask;
};

#define MAX_PAIRS 2048 /* a power of two: indexes are masked with it */
#define SE_WHEN_SHIFT 16 /* sys_lists key: nr | SE_ENTER or SE_EXIT << 16 */

enum sys_head_flag {
	SH_MAPPED = 1,
	/* every pair's hook is cacheable, and a pair's variant is v[vi]: a
	 * file the list's hooks all passed over is remembered once */
	SH_CACHEABLE = 2,
};

const enum sys_head_flag *unused_sys_head_flag __attribute__((unused));

/* What a call of a mapped syscall needs before its list: whether there
 * is one, and what the verdict cache is keyed by. 8 bytes, so that one
 * load reads it whole while user space rewrites it. */
struct sys_head {
	__u8 flags;
	__u8 nv;
	struct sys_variant v[2];
	__u8 pad[2];
} __attribute__((aligned(8)));

/* The hooks a syscall's entry or exit runs, in load order. A list is
 * replaced whole by one map update, so a call sees the hooks of one
 * version of every policy. */
struct sys_list {
	struct sys_head h; /* the head sys_mapped has for this list */
	__u16 n;
	/* the prefilter (UNION_SLOT in lib/hook.h): every pair reads the call
	 * as the one before it does, so the first reading decides for all */
	__u8 pre;
	__u8 pad;
	struct sys_pair p[MAX_PAIRS];
};

const struct sys_list *unused_sys_list __attribute__((unused));

/* the dispatcher's limits, for bpf2go to generate (macros are not in BTF) */
enum dispatch_limit {
	DL_HOOK_SLOTS = HOOK_SLOTS,
	DL_HOOK_STRINGS = HOOK_STRINGS,
	DL_MAX_PAIRS = MAX_PAIRS,
	DL_WHEN_SHIFT = SE_WHEN_SHIFT,
	DL_SYS_TABLE_LEN = SYS_TABLE_LEN,
};
const enum dispatch_limit *unused_dispatch_limit __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SYS_TABLE_LEN);
	__type(key, __u32);
	__type(value, struct sys_list);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sys_lists SEC(".maps");

/* the heads of sys_lists' lists, by (nr * 2 + (exit ? 1 : 0)): an array
 * lookup, which the JIT inlines, settles every syscall no hook maps, and
 * a call the verdict cache decides, without the list's hash lookup, which
 * measured as the costliest step of such a call (docs/performance.md) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SYS_TABLE_LEN);
	__type(key, __u32);
	__type(value, struct sys_head);
} sys_mapped SEC(".maps");

/* hooks' configurations by slot; a hash, so that a call in flight keeps
 * reading the entry it found while user space replaces or deletes it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOOK_SLOTS);
	__type(key, __u32);
	__type(value, struct gen_conf);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} confs SEC(".maps");

enum list_stat {
	LS_CALLS = 0,  /* calls of the syscall (entry or exit) */
	LS_CACHED = 1, /* variants the verdict cache decided */
	LS_PASSED = 2, /* calls the prefilter decided: no hook's selectors ran */
	LS_MAX = 3,
};

const enum list_stat *unused_list_stat __attribute__((unused));

/* per sys_lists key: (nr * 2 + (exit ? 1 : 0)) * LS_MAX + stat */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * SYS_TABLE_LEN * LS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} list_stats SEC(".maps");

/* idx: the call's sys_mapped index */
static __always_inline void list_stat(__u32 idx, __u32 s)
{
	__u32 k = idx * LS_MAX + s;
	__u64 *v = bpf_map_lookup_elem(&list_stats, &k);

	if (v)
		*v += 1;
}

/* Verdict cache: resolving a path costs a dentry walk, which a read-heavy
 * workload would pay on every read, once per hook. A file whose path
 * matched no selector of any hook of a list is remembered by what
 * determines its path as this task sees it (dentry, mount, the task's
 * root), the access mask and the list. Anything that can change a cached
 * file's path (rename, mount changes, chroot) or free it (the unlink
 * family, below) bumps the generation, which
 * invalidates every entry at once; so does user space after every change
 * of the lists.
 *
 * A dentry's address alone does not name a file: a deleted file's dentry
 * is freed (once unused, when its directory goes, or under memory
 * pressure) and the slab hands its memory to the next dentry allocated,
 * which may be a watched file's. An entry also holds the file's inode, the
 * inode's number and its generation, and is a hit only when they are the
 * file's: a freed dentry's successor at the same address is another
 * file's, whose inode is another. The slab may give it the old inode's
 * memory too, and ext4 gives a new file the number a deleted one freed at
 * once; but a filesystem that reuses numbers gives the new inode another
 * generation (i_generation, which NFS file handles rely on for the same
 * reason). On overlayfs, whose inodes a container's files are, the
 * generation did not tell them apart (TestVerdictCacheDentryReuse), so a
 * deletion (the unlink family) bumps the generation of the cache too, and
 * a file without a name is never remembered (linked). The same inode under
 * another name is a hard link, which a path selector does not follow
 * anyway. */
struct verdict_key {
	/* a struct path: read at once */
	__u64 mnt;
	__u64 dentry;
	/* the task's root, which the file's path is resolved up to: both
	 * halves, as two roots can share a dentry (two bind mounts of one
	 * directory), and a file reached from both then has two paths
	 * (TestVerdictCacheRoot) */
	__u64 root_mnt;
	__u64 root;
	__u32 mask; /* the list variant: access mask | fd source << 8 */
	__u32 list; /* the sys_lists key: its hooks passed over the file */
};

struct verdict {
	__u64 gen;
	__u64 inode; /* the file's struct inode */
	__u64 ino;   /* its number */
	__u32 igen;  /* its generation */
	__u32 pad;
};

/* FILE_SPAN: the most file_identity reads of a struct file at once */
#define FILE_SPAN 64

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct verdict_key);
	__type(value, struct verdict);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} generation SEC(".maps");

/* NEAR_N: the verdicts each CPU keeps beside its scratch (a power of two) */
#define NEAR_N 16

struct near_verdict {
	struct verdict_key k;
	struct verdict v;
};

/* What a call keeps per list variant, off the stack: the selector
 * evaluation's chain of frames needs the stack, and 6.1's verifier refuses
 * byte reads of stack slots a register was spilled to. */
struct dispatch_scratch {
	struct verdict_key k[2];
	struct verdict v[2]; /* the file's inode, then what is stored */
	__u8 file[FILE_SPAN]; /* f_path and f_inode, read at once */
	/* per variant, reset at every call (one 8-byte store) */
	struct {
		__u8 keyed[2];   /* k holds the variant's file */
		__u8 hit[2];     /* the variant's file is in the verdict cache */
		__u8 matched[2]; /* a hook matched on the variant */
		__u8 partial[2]; /* a hook was passed over for the call, not the file */
	} f;
	struct sys_head h; /* the call's reading of sys_mapped */
	/* this CPU's most recent verdicts (see near_find) */
	struct near_verdict near[NEAR_N];
	/* the call, for the hook loop: kept here rather than in its context,
	 * whose frame is under every hook's selector evaluation */
	__u64 regs; /* struct pt_regs *, read with probe reads */
	long nr;
	long ret; /* the syscall's return (0 at entry) */
	__u64 id;
	__u64 gen;  /* the generation, read before the list */
	__u32 key;  /* the sys_lists key */
	__u32 idx;  /* the sys_mapped index */
	/* 1 + the index of the pair whose reading the record holds, else 0 */
	__u32 filled;
	bool compat; /* a 32-bit call: nr is its x86_64 counterpart's */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dispatch_scratch);
} scratch_heap SEC(".maps");

/* The slots of a direction's chain (sys_enter_chain, sys_exit_chain).
 * A filter is a program user space generates per set of mapped syscalls
 * (pkg/sensor/sysfilter.go): it holds the set as comparisons with
 * immediates, so that a call no hook maps reads no map memory. On a
 * paravirtualized guest the first load from a page in each system call
 * costs more than the rest of such a call (docs/performance.md). The
 * attached filter jumps to the filter slot first: a raw tracepoint link
 * cannot take another program, and a slot changes for the next call at
 * once. A constant-index tail call is a direct jump, patched when the
 * slot changes, so the chain itself reads no map memory either; into an
 * empty slot it falls through. */
enum chain_slot {
	CS_FILTER = 0, /* empty while the attached filter's set is the one */
	CS_RUN = 1,
	CS_MAX = 2,
	/* what the filter reads: thread_info.status's 32-bit call flag */
	CS_TS_COMPAT = TS_COMPAT,
};

const enum chain_slot *unused_chain_slot __attribute__((unused));

struct chain {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, CS_MAX);
	__type(key, __u32);
	__type(value, __u32);
};

struct chain sys_enter_chain SEC(".maps");
struct chain sys_exit_chain SEC(".maps");

/* Each direction's attached filter's set, as user space attached it (by
 * direction: 0 entry, 1 exit). No program reads it: a restart that adopts
 * the dispatcher does, to know when the attached filter can decide alone
 * with its slot empty (pkg/sensor/sysfilter.go). The set is written before
 * its filter is attached and names it, so a set whose program is not the
 * one attached is stale and tells nothing. */
struct attached_set {
	__u32 prog_id;
	__u32 pad;
	__u64 nrs[SYS_TABLE_LEN / 64]; /* bit nr % 64 of word nr / 64 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct attached_set);
} attached_sets SEC(".maps");

/* call_arg reads argument i of the call: from the x86_64 registers
 * (reg_arg), or for a 32-bit call from the i386 ones, ebx, ecx, edx, esi,
 * edi, ebp, whose upper halves the kernel ignores. */
static __always_inline long call_arg(struct pt_regs *regs, __u32 i, bool compat)
{
	if (!compat)
		return reg_arg(regs, i);
	switch (i) {
	case 0: return (__u32)BPF_CORE_READ(regs, bx);
	case 1: return (__u32)BPF_CORE_READ(regs, cx);
	case 2: return (__u32)BPF_CORE_READ(regs, dx);
	case 3: return (__u32)BPF_CORE_READ(regs, si);
	case 4: return (__u32)BPF_CORE_READ(regs, di);
	case 5: return (__u32)BPF_CORE_READ(regs, bp);
	}
	return 0;
}

/* call_fd reads an fd argument: an int, so a 32-bit call's AT_FDCWD is
 * -100 as a 64-bit one's */
static __always_inline long call_fd(struct pt_regs *regs, __u32 i, bool compat)
{
	long v = call_arg(regs, i, compat);

	return compat ? (long)(int)v : v;
}

/* syscalls that can change which path a dentry has, or free a file's
 * dentry, inode and number for a new file to take (the unlink family:
 * see struct verdict), or make mounts (a new mount namespace's copies of
 * every mount, a detached tree): the verdict cache's generation is
 * bumped at their entry and exit. A mount is keyed by its address, and a
 * mount namespace's mounts are freed when its last task exits, which no
 * system call marks; a mount made later at a freed one's address may show
 * the same dentry at another path. The filters pass them (user space
 * reads this enum from the object's BTF). */
#define ALWAYS_CHANGERS(X)                                                      \
	X(unlink) X(unlinkat) X(rmdir) X(rename) X(renameat) X(renameat2)       \
	X(mount) X(umount2) X(pivot_root) X(chroot) X(unshare) X(setns)        \
	X(move_mount) X(mount_setattr) X(open_tree) X(fsmount)
#define PC_VALUE(name) PC_##name = NR_##name,
#define PC_CASE(name) case PC_##name:

enum path_changer {
	ALWAYS_CHANGERS(PC_VALUE)
	/* only with CLONE_NEWNS: every fork passes here */
	PC_clone = NR_clone,
	PC_clone3 = NR_clone3,
};

const enum path_changer *unused_path_changer __attribute__((unused));

#define CLONE_NEWNS 0x00020000

static __always_inline bool changes_paths(struct pt_regs *regs, long nr, bool compat)
{
	__u64 flags;

	switch (nr) {
	ALWAYS_CHANGERS(PC_CASE)
		return true;
	case PC_clone:
		return call_arg(regs, 0, compat) & CLONE_NEWNS;
	case PC_clone3:
		/* struct clone_args starts with the flags; unreadable, the
		 * call counts as one that makes mounts */
		if (bpf_probe_read_user(&flags, sizeof(flags), (void *)call_arg(regs, 0, compat)))
			return true;
		return flags & CLONE_NEWNS;
	}
	return false;
}

/* bump_generation makes every remembered verdict stale */
static __always_inline void bump_generation(void)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&generation, &zero);

	if (gen)
		__sync_fetch_and_add(gen, 1);
}

/* io_uring renames and deletes files with no system call of its own
 * (IORING_OP_RENAMEAT, IORING_OP_UNLINKAT, run by a worker thread or the
 * SQPOLL thread): a request of either bumps the generation when it is
 * submitted and when it completes, as a renaming call's entry and exit
 * do. req: a struct io_kiocb, or NULL for a completion of no request. */
static __always_inline void uring_request(void *req)
{
	__u8 op;

	if (bpf_probe_read_kernel(&op, sizeof(op), req + bpf_core_field_offset(struct io_kiocb, opcode)))
		return;
	if (op == IORING_OP_RENAMEAT || op == IORING_OP_UNLINKAT)
		bump_generation();
}

/* bpf_rdonly_cast (Linux 6.2) makes a pointer of an address, for plain
 * loads; weak, so that 6.1 loads the object and takes the probe reads */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* file_identity fills the verdict key of the file behind fd, and its
 * inode, with as few helper calls as possible: it runs on every mapped
 * call (every read and write for security_file_permission), so the task
 * walk uses direct BTF loads. The file takes no helper call where
 * bpf_rdonly_cast exists, and three probe reads on 6.1 (the file, its
 * path and inode at once, the inode's number). Every read goes straight
 * into the scratch map: 6.1 counts the stack of this frame under every
 * hook's selector evaluation. Returns false when fd is not an open file. */
static __always_inline bool file_identity(long fd, struct dispatch_scratch *sc, __u32 vi)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct verdict_key *vk = &sc->k[vi & 1];
	struct verdict *vv = &sc->v[vi & 1];
	struct file *f = NULL;
	struct inode *ino;
	__u32 op, oi, lo, hi;
	void *fd_slot;

	if (fd < 0 || fd >= fdt->max_fds)
		return false;
	vk->root_mnt = (__u64)t->fs->root.mnt;
	vk->root = (__u64)t->fs->root.dentry;
	fd_slot = (void *)fdt->fd + (fd & 0xfffff) * sizeof(f);
	if (!!bpf_rdonly_cast) {
		/* 6.2 and later: untrusted BTF pointers, whose loads the JIT
		 * guards with a fault fixup, so no helper call at all. fdt->fd
		 * is a pointer to pointers, a scalar to the verifier: its slot
		 * is read through list_head, whose first member is a pointer
		 * in every kernel. */
		struct list_head *slot = bpf_rdonly_cast(fd_slot, bpf_core_type_id_kernel(struct list_head));

		f = bpf_rdonly_cast(slot->next, bpf_core_type_id_kernel(struct file));
		if (!f)
			return false;
		vk->mnt = (__u64)f->f_path.mnt;
		vk->dentry = (__u64)f->f_path.dentry;
		ino = f->f_inode;
		vv->inode = (__u64)ino;
		vv->ino = ino->i_ino;
		vv->igen = ino->i_generation;
		return true;
	}
	bpf_probe_read_kernel(&f, sizeof(f), fd_slot);
	if (!f)
		return false;
	/* f_path and f_inode are near each other in every struct file (after
	 * relocation these are constants): one read when they fit FILE_SPAN */
	op = bpf_core_field_offset(f->f_path);
	oi = bpf_core_field_offset(f->f_inode);
	lo = op < oi ? op : oi;
	hi = op + 16 > oi + 8 ? op + 16 : oi + 8;
	if (hi - lo <= FILE_SPAN && op - lo <= FILE_SPAN - 16 && oi - lo <= FILE_SPAN - 8) {
		bpf_probe_read_kernel(sc->file, hi - lo, (void *)f + lo);
		vk->mnt = *(__u64 *)&sc->file[op - lo];
		vk->dentry = *(__u64 *)&sc->file[op - lo + 8];
		vv->inode = *(__u64 *)&sc->file[oi - lo];
	} else {
		bpf_probe_read_kernel(&vk->mnt, 2 * sizeof(__u64), __builtin_preserve_access_index(&f->f_path));
		bpf_core_read(&vv->inode, sizeof(vv->inode), &f->f_inode);
	}
	/* from a local: inside bpf_core_read, vv->inode would be a CO-RE
	 * access of this file's struct verdict, which no kernel has */
	ino = (struct inode *)vv->inode;
	/* the number and the generation, in one read when they are near */
	op = bpf_core_field_offset(ino->i_ino);
	oi = bpf_core_field_offset(ino->i_generation);
	if (op < oi && oi + 4 - op <= FILE_SPAN) {
		bpf_probe_read_kernel(sc->file, oi + 4 - op, (void *)ino + op);
		vv->ino = *(__u64 *)&sc->file[0];
		vv->igen = *(__u32 *)&sc->file[(oi - op) & (FILE_SPAN - 4)];
	} else {
		bpf_core_read(&vv->ino, sizeof(vv->ino), &ino->i_ino);
		bpf_core_read(&vv->igen, sizeof(vv->igen), &ino->i_generation);
	}
	return true;
}

/* linked says whether an inode has a name. A file without one (deleted
 * while open, or made with O_TMPFILE) is not remembered: its dentry,
 * inode and number are freed at its last close, which no syscall of the
 * unlink family marks, and a new file may take all three. Read only when
 * a verdict is stored. */
static __always_inline bool linked(struct inode *ino)
{
	return BPF_CORE_READ(ino, i_nlink) != 0;
}

/* same_file reports whether a cached verdict is of the file now at its
 * key (see struct verdict) */
static __always_inline bool same_file(struct verdict *seen, struct verdict *now)
{
	return seen->inode == now->inode && seen->ino == now->ino && seen->igen == now->igen;
}

/* near_slot is where this CPU keeps the verdict of key k */
static __always_inline __u32 near_slot(struct verdict_key *k)
{
	__u64 h = (k->dentry >> 6) ^ (k->mnt >> 6) ^ k->mask ^ ((__u64)k->list << 3);

	return (h ^ (h >> 11)) & (NEAR_N - 1);
}

/* near_find returns the verdict this CPU keeps for key k, if any. The
 * verdicts LRU is a hash: a lookup hashes the 40-byte key and walks a
 * bucket in memory the call touches nowhere else. A file a task reads
 * or opens again and again is kept here as well, in the per-CPU scratch
 * the call has at hand; an entry is valid as the LRU's are (generation,
 * inode). */
static __always_inline struct verdict *near_find(struct dispatch_scratch *sc, struct verdict_key *k)
{
	struct near_verdict *n = &sc->near[near_slot(k)];

	if (n->k.dentry == k->dentry && n->k.mnt == k->mnt && n->k.root == k->root &&
	    n->k.root_mnt == k->root_mnt && n->k.mask == k->mask && n->k.list == k->list)
		return &n->v;
	return NULL;
}

static __always_inline void near_put(struct dispatch_scratch *sc, struct verdict_key *k, struct verdict *v)
{
	struct near_verdict *n = &sc->near[near_slot(k)];

	n->k = *k;
	n->v = *v;
}

/* put_user_sockaddr copies the struct sockaddr_in or sockaddr_in6 a
 * syscall was given (connect, bind, sendto) into string slot s of r, as
 * hook.c does: selectors (match_sock) and user space read the family
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
	bool compat;
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
		r->ints[i] = call_arg(x->regs, a->reg, x->compat);
		break;
	case SRC_RET:
		r->ints[i] = x->ret;
		break;
	case SRC_VAR_MASK:
		r->ints[i] = v->mask;
		break;
	case SRC_REG_USTR:
		put_user_str(r, a->str, call_arg(x->regs, a->reg, x->compat));
		break;
	case SRC_REG_SOCKADDR:
		put_user_sockaddr(r, a->str, call_arg(x->regs, a->reg, x->compat));
		break;
	case SRC_REG_I32ARR:
		put_user_i32arr(r, a->str, call_arg(x->regs, a->reg, x->compat));
		break;
	case SRC_REG_FILE:
	case SRC_RET_FILE:
	case SRC_VAR_FILE:
	case SRC_VAR_PATH:
		if (a->src == SRC_REG_FILE)
			fd = call_fd(x->regs, a->reg, x->compat);
		else if (a->src == SRC_RET_FILE || v->fd_src == VAR_FD_RET)
			fd = x->ret;
		else if (v->fd_src == VAR_NO_FD) {
			put_user_str(r, a->str, call_arg(x->regs, 0, x->compat));
			break;
		} else
			fd = call_fd(x->regs, v->fd_src, x->compat);
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
static __noinline void fill_args(struct gen_conf *c, struct gen_rec *r, struct sys_variant *v,
				 struct dispatch_scratch *sc)
{
	struct fill_ctx x = {.c = c, .r = r, .regs = (struct pt_regs *)sc->regs, .v = v, .ret = sc->ret,
			     .compat = sc->compat, .t = (struct task_struct *)bpf_get_current_task()};

	bpf_loop(c->nargs, fill_arg, &x, 0);
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

struct dispatch_ctx {
	struct sys_list *l;
	struct dispatch_scratch *s;
};

/* run_pair evaluates hook pair i of the list on the call. Under bpf_loop,
 * so the verifier checks one evaluation, whatever the list's length. */
static long run_pair(__u32 i, void *data)
{
	struct dispatch_ctx *x = data;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct dispatch_scratch *sc = x->s;
	struct pt_regs *regs = (struct pt_regs *)sc->regs;
	struct sys_variant v = {};
	struct gen_rec *r;
	struct sys_pair *p;
	struct gen_conf *c;
	__u32 vi, slot, zero = 0;
	long fret;
	int s;

	if (i >= MAX_PAIRS)
		return 1;
	p = &x->l->p[i & (MAX_PAIRS - 1)];
	vi = p->vi & 1;
	if (sc->f.hit[vi])
		return 0;
	if ((p->flags & SE_RET_OK) && sc->ret < 0) {
		sc->f.partial[vi] = 1;
		return 0;
	}
	fret = func_ret(sc->ret, p->flags);
	if (fret == NO_RET) {
		sc->f.partial[vi] = 1;
		return 0;
	}
	v.fd_src = p->fd_src;
	v.mask = p->mask;
	if ((p->flags & SE_NEED_FILE) && v.fd_src < 6 && !fd_file(t, call_fd(regs, v.fd_src, sc->compat)))
		return 0;
	slot = p->slot;
	c = bpf_map_lookup_elem(&confs, &slot);
	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!c || !r)
		return 0;
	if (!(p->flags & SE_SAME_ARGS) || sc->filled != i) {
		r->str_len[0] = r->str_len[1] = 0;
		r->str_flags[0] = r->str_flags[1] = 0;
		fill_args(c, r, &v, sc);
		if (prefilter_miss(x->l->pre)) {
			list_stat(sc->idx, LS_PASSED);
			return 1;
		}
	}
	sc->filled = i + 1;
	s = select(c, r, fret);
	if (s < 0)
		return 0;
	sc->f.matched[vi] = 1;
	act_and_post(c, r, s, sc->id, sc->nr, fret);
	return 0;
}

/* tp_arg reads argument i of a 64-bit call from the tracepoint's own
 * struct pt_regs, a pointer the verifier trusts: direct loads, which the
 * JIT makes plain loads, where reg_arg's probe reads are helper calls.
 * It runs on every call the verdict cache may decide. */
static __always_inline long tp_arg(struct pt_regs *regs, __u32 i)
{
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	case 5: return regs->r9;
	}
	return 0;
}

/* cache_key fills the verdict key of list variant vi; false when the
 * variant's fd is no open file, which is then not cached. regs is the
 * tracepoint's (trusted: a static function is verified with its caller's
 * registers). Not inlined: its frame is then not part of the program's
 * own, which 6.1 counts under every hook's selector evaluation (512 bytes
 * in all). */
static __noinline bool cache_key(struct dispatch_ctx *x, struct pt_regs *regs, __u32 vi, __u32 list)
{
	struct verdict_key *vk = &x->s->k[vi & 1];
	struct sys_variant *v = &x->s->h.v[vi & 1];
	long fd;

	if (v->fd_src == VAR_NO_FD)
		return false;
	/* the variant whole: a verdict is of one reading of the call */
	vk->mask = v->mask | (__u32)v->fd_src << 8;
	vk->list = list;
	if (v->fd_src == VAR_FD_RET)
		fd = x->s->ret;
	else if (x->s->compat)
		fd = call_fd(regs, v->fd_src & 7, true);
	else
		fd = tp_arg(regs, v->fd_src & 7);
	return file_identity(fd, x->s, vi);
}

/* in_compat_call says whether the task is in a 32-bit system call: x86
 * sets TS_COMPAT at an int 0x80 or sysenter entry and clears it on the
 * return to user space, after sys_exit. A direct load: it runs on every
 * system call. */
static __always_inline bool in_compat_call(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if (!bpf_core_field_exists(t->thread_info.status))
		return false;
	return t->thread_info.status & TS_COMPAT;
}

/* cached looks the call's files up in the verdict cache, this CPU's
 * near verdicts first, and says whether each variant's file is one the
 * list's hooks all passed over. Not inlined: its locals then stay off the
 * program's frame, which 6.1 counts under every hook's selector
 * evaluation. */
static __noinline bool cached(struct dispatch_ctx *x, struct pt_regs *regs)
{
	struct dispatch_scratch *sc = x->s;
	struct verdict *seen;

	for (int vi = 0; vi < 2; vi++) {
		if (vi >= sc->h.nv)
			break;
		sc->f.keyed[vi] = cache_key(x, regs, vi, sc->key);
		if (!sc->f.keyed[vi])
			continue;
		seen = near_find(sc, &sc->k[vi]);
		if (!seen || seen->gen != sc->gen) {
			seen = bpf_map_lookup_elem(&verdicts, &sc->k[vi]);
			if (seen && seen->gen == sc->gen)
				near_put(sc, &sc->k[vi], seen);
		}
		if (seen && seen->gen == sc->gen && same_file(seen, &sc->v[vi])) {
			sc->f.hit[vi] = 1;
			list_stat(sc->idx, LS_CACHED);
		}
	}
	return sc->f.hit[0] && (sc->h.nv < 2 || sc->f.hit[1]);
}

static __always_inline int handle(struct pt_regs *regs, long nr, long ret, __u8 when)
{
	struct dispatch_ctx x = {};
	struct dispatch_scratch *sc;
	__u32 zero = 0, idx;
	__u64 *gen, hv, lv;
	struct sys_head *head;
	bool compat = in_compat_call();

	/* a 32-bit call is served as its x86_64 counterpart, with its own
	 * argument registers (call_arg); one without is not served */
	if (compat) {
		if (nr < 0 || nr >= sizeof(compat_nr) / sizeof(compat_nr[0]))
			return 0;
		nr = (long)compat_nr[nr] - 1;
	}
	if (nr < 0 || nr >= SYS_TABLE_LEN)
		return 0;
	if (changes_paths(regs, nr, compat))
		bump_generation();
	/* a syscall the filter passed and no hook maps costs this lookup */
	idx = nr * 2 + (when == SE_EXIT);
	head = bpf_map_lookup_elem(&sys_mapped, &idx);
	if (!head)
		return 0;
	/* one load: user space rewrites the head with one store (flags is
	 * its first byte) */
	hv = *(volatile __u64 *)head;
	if (!(hv & SH_MAPPED))
		return 0;
	gen = bpf_map_lookup_elem(&generation, &zero);
	if (!gen)
		return 0;
	sc = bpf_map_lookup_elem(&scratch_heap, &zero);
	if (!sc)
		return 0;
	x.s = sc;
	/* read before the list: user space bumps it after changing a list,
	 * so a verdict of an old list is stored stale */
	sc->gen = *gen;
	sc->key = nr | (__u32)when << SE_WHEN_SHIFT;
	sc->idx = idx;
	__builtin_memset(&sc->f, 0, sizeof(sc->f));
	sc->regs = (__u64)regs;
	sc->nr = nr;
	sc->ret = ret;
	sc->compat = compat;
	__builtin_memcpy(&sc->h, &hv, sizeof(hv));
	list_stat(idx, LS_CALLS);
	if ((hv & SH_CACHEABLE) && cached(&x, regs))
		return 0;
	x.l = bpf_map_lookup_elem(&sys_lists, &sc->key);
	if (!x.l)
		return 0;
	/* user space writes a list before its head: a head older than its
	 * list (a reload in between) keyed the cache by the old variants,
	 * so this call neither skips nor remembers a file */
	__builtin_memcpy(&lv, &x.l->h, sizeof(lv));
	if (lv != *(__u64 *)&sc->h)
		__builtin_memset(&sc->f, 0, sizeof(sc->f));
	/* here, not above: a cache hit needs no pid */
	sc->id = bpf_get_current_pid_tgid();
	sc->filled = 0;
	bpf_loop(x.l->n, run_pair, &x, 0);
	for (int vi = 0; vi < 2; vi++) {
		/* stored with the generation read before the paths were
		 * resolved: a rename meanwhile makes the entry stale */
		if (sc->f.keyed[vi] && !sc->f.hit[vi] && !sc->f.matched[vi] && !sc->f.partial[vi] &&
		    linked((struct inode *)sc->v[vi].inode)) {
			sc->v[vi].gen = sc->gen;
			bpf_map_update_elem(&verdicts, &sc->k[vi], &sc->v[vi], BPF_ANY);
			near_put(sc, &sc->k[vi], &sc->v[vi]);
		}
	}
	return 0;
}

/* The programs attached where a direction's filter cannot be loaded: the
 * slot's filter if there is one, else the run. The run slot is filled
 * before a program is attached and stays filled while the chain exists
 * (user space pins the chain with the links). */
SEC("tp_btf/sys_enter")
int gen_sys_enter(void *ctx)
{
	bpf_tail_call(ctx, &sys_enter_chain, CS_FILTER);
	bpf_tail_call(ctx, &sys_enter_chain, CS_RUN);
	return 0;
}

SEC("tp_btf/sys_exit")
int gen_sys_exit(void *ctx)
{
	bpf_tail_call(ctx, &sys_exit_chain, CS_FILTER);
	bpf_tail_call(ctx, &sys_exit_chain, CS_RUN);
	return 0;
}

/* Raw context reads: the tracepoints' other arguments differ between
 * kernels. The request is the first argument of io_uring_submit_req (or
 * of io_uring_submit_sqe, its older name, which 6.1 has) and the second
 * of io_uring_complete; user space attaches both, with the first hook,
 * where the kernel's BTF says so (uringTracepoints). */
SEC("tp_btf/io_uring_submit_req")
int uring_submit(__u64 *ctx)
{
	uring_request((void *)ctx[0]);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int uring_complete(__u64 *ctx)
{
	uring_request((void *)ctx[1]);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(run_sys_enter, struct pt_regs *regs, long id)
{
	return handle(regs, id, 0, SE_ENTER);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(run_sys_exit, struct pt_regs *regs, long ret)
{
	/* a direct load: this runs at the exit of every system call */
	return handle(regs, regs->orig_ax, ret, SE_EXIT);
}
