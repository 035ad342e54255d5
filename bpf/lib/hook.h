/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every TracingPolicy hook object shares, whatever feeds it (raw
 * syscall tracepoints in dispatch.c, kprobes in hook.c): the configuration
 * layout (arguments, selectors as data), the record layout, string matching
 * through the LPM trie, selector evaluation, and the actions and record
 * posting. A selector therefore behaves the same whichever mechanism serves
 * the hook, and user space encodes one configuration and decodes one record
 * format (OP_GENERIC) for all of them. */
#pragma once

#include "common.h"
#include "path.h"
#include <bpf/bpf_endian.h>

/* x86's thread_info.status flag for a 32-bit system call in progress
 * (arch/x86/include/asm/thread_info.h) */
#define TS_COMPAT 0x0002

#define MAX_ARGS 5
#define MAX_SELECTORS 5
/* filter entries per selector, all lists together (matchArgs, matchPIDs,
 * matchBinaries, ...): 8 so that an index masked with 7 stays in bounds */
#define MAX_MATCH_ARGS 8
#define MAX_VALUES 8
#define MAX_STRS 2
#define MAX_I32ARR 64 /* int32_arr elements: 256 bytes of a string slot */
#define STR_LEN PATH_MAX_LEN
/* the LPM trie allows 256 key bytes after prefixlen: two for the match
 * slot, the rest for the string */
#define LPM_DATA 254

/* Hooks whose counters an object keeps: 1 for an object that serves one
 * hook (hook.c); the syscall dispatcher (dispatch.c) serves every
 * syscall-mapped hook from one object and defines its own count. */
#ifndef HOOK_SLOTS
#define HOOK_SLOTS 1
#endif
/* match strings and addresses the object's trie holds, all hooks together */
#ifndef HOOK_STRINGS
#define HOOK_STRINGS 4096
#endif
/* (hook, cgroup) pairs of the object's scoped hooks, all hooks together */
#ifndef HOOK_CGROUPS
#define HOOK_CGROUPS 4096
#endif

enum gen_stat {
	GS_CALLS = 0,    /* calls seen, in an object of its own (a shared object counts its calls in point_stats, the dispatcher per syscall list) */
	GS_MATCHED = 1,  /* calls a selector matched */
	GS_POSTED = 2,   /* records written */
	GS_DROPS = 3,    /* records lost: ring buffer full */
	GS_SIGNALS = 4,  /* Sigkill/Signal actions taken */
	GS_CACHED = 5,   /* calls decided by the verdict cache */
	GS_MAX = 8,
};

/* counters of hook slot i at i * GS_MAX */
DEFINE_STATS(GS_MAX * HOOK_SLOTS)

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
	/* read by hook.c only: the socket's fields, or the socket address,
	 * are copied into the argument's string slot (struct sock_data, or
	 * struct sockaddr_in/in6 as it is) */
	SRC_REG_SOCK = 32,     /* struct sock * */
	SRC_REG_SOCKADDR = 33, /* struct sockaddr *, kernel or user memory */
	/* read by hook.c only: a system call number (syscall64), with
	 * SYSCALL64_32BIT set when the task is in a 32-bit (compat) system
	 * call, whose numbers are another table's */
	SRC_REG_SYSCALL64 = 34,
	SRC_REG_BINPRM = 35, /* struct linux_binprm *: the path of the file being executed */
	SRC_REG_CRED = 36,   /* struct cred *: its ids and capability sets, as struct cred_data */
	SRC_REG_NETDEV = 37, /* struct net_device *: its name */
	SRC_REG_KIOCB = 38,  /* struct kiocb *: the path of its file */
	SRC_REG_USERNS = 39, /* struct user_namespace *: struct userns_data */
	SRC_REG_SOCKET = 40, /* struct socket *: its sock, as SRC_REG_SOCK */
	/* struct sk_buff *: its packet's family, protocol, addresses and
	 * ports, as struct sock_data (struct skb_data) */
	SRC_REG_SKB = 41,
	/* union bpf_attr * of a BPF_PROG_LOAD (struct bpf_attr_data) */
	SRC_REG_BPF_ATTR = 42,
	/* struct bpf_map *: its type, sizes and name (struct bpf_map_data) */
	SRC_REG_BPF_MAP = 50,
	/* struct perf_event *: its type, PMU, config and, for a kprobe PMU
	 * event, the probed function (struct perf_event_data) */
	SRC_REG_PERF_EVENT = 51,
	/* kernel_cap_t *: the capability set, 64 bits (struct { u64 val }
	 * since 6.3, __u32 cap[2] before: the same bytes) */
	SRC_REG_KCAP = 43,
	/* int32_arr: int32s in user memory (pipe2's and socketpair's fds),
	 * copied into the string slot; arg_conf.str carries the element count
	 * above the slot bit (str >> 1, 1..MAX_I32ARR) */
	SRC_REG_I32ARR = 52,
	/* read by hook.c only: struct module *: its name, taints and
	 * signature verdict (struct module_data) */
	SRC_REG_MODULE = 53,
	/* read by hook.c only: struct msghdr * of a UDP send: the first
	 * question's name of the DNS message in its payload (bpf/lib/dns.h) */
	SRC_REG_DNS = 54,
	/* read by hook.c only: struct iov_iter *: the bytes it describes
	 * (lib/ioviter.h) */
	SRC_REG_IOVITER = 55,
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
	/* Tetragon's socket operators, on SRC_REG_SOCK and SRC_REG_SOCKADDR
	 * arguments (match_sock). Addresses are looked up in the LPM trie;
	 * the other fields are compared with ranges, lo | hi << 32 */
	MOP_SADDR,
	MOP_NOT_SADDR,
	MOP_DADDR,
	MOP_NOT_DADDR,
	MOP_SPORT,
	MOP_NOT_SPORT,
	MOP_DPORT,
	MOP_NOT_DPORT,
	MOP_PROTOCOL,
	MOP_FAMILY,
	MOP_STATE,
	/* InRange, NotInRange on integers: vals are inclusive (lo, hi)
	 * pairs, in the argument type's order */
	MOP_IN_RANGE,
	MOP_NOT_IN_RANGE,
	/* SubString, SubStringIgnCase on strings and paths: the values are
	 * prefix entries in the LPM trie (lower-case for IgnCase), looked
	 * up at every position of the string (match_substr) */
	MOP_SUBSTR,
	MOP_SUBSTR_IGNCASE,
	/* FileType, NotFileType on files and paths: vals are S_IFMT values,
	 * compared with the file type put_path keeps in str_flags */
	MOP_FILE_TYPE,
	MOP_NOT_FILE_TYPE,
};

/* put_path keeps the type of the file it resolved (i_mode & S_IFMT) in
 * the upper four bits of the slot's str_flags, which the PATH_F_* flags
 * leave free: FileType matches it, and the record's layout stays as it
 * was. */
#define STR_F_TYPE 0xf000

/* the fields of a struct sock, as hook.c's put_sock copies them into
 * an argument's string slot for selectors and user space */
struct sock_data {
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u8 state;
	__u8 pad[5];
	__u8 saddr[16]; /* network order; 4 bytes for AF_INET */
	__u8 daddr[16];
};

/* the first key byte of an address in the LPM trie: addresses of both
 * families share a match slot, so the family is part of the prefix */
#define ADDR_KEY_V4 4
#define ADDR_KEY_V6 6

/* What a selector entry filters on. Entries of one selector are ANDed,
 * whatever their kind; user space orders them cheapest first, since the
 * first that does not hold ends the selector. */
enum match_kind {
	MK_ARG = 0, /* matchArgs: record slot arg */
	MK_RET,     /* matchReturnArgs: the return value, narrowed to size bytes */
	MK_PID,     /* matchPIDs: the process id (tgid) */
	MK_NS,      /* matchNamespaces: arg is enum ns_kind, vals the inode numbers */
	MK_CAPS,    /* matchCapabilities: arg is enum cap_set, vals[0] the mask */
	MK_BINARY,  /* matchBinaries: the executable's path, strings at slot */
	/* matchCapabilityChanges: set arg against the process's exec record
	 * (exec_creds), vals[0] the mask */
	MK_CAP_CHANGE,
	/* matchNamespaceChanges: the namespaces against the exec record,
	 * vals[0] a bit per enum ns_kind */
	MK_NS_CHANGE,
};

/* match_arg.flags */
enum match_flag {
	MF_FOLLOW = 1, /* followForks / followChildren: the process or an ancestor */
	MF_NS_PID = 2, /* isNamespacePID: the pid in the process's own pid namespace */
	MF_NS_CAP = 4, /* isNamespaceCapability: only outside the user namespace vals[1] */
	MF_SIGNED = 8, /* MK_RET: sign-extend from size bytes */
	MF_PARENT = 16, /* MK_BINARY: matchParentBinaries, from the parent process up */
};

/* the namespaces matchNamespaces names, in Tetragon's order */
enum ns_kind {
	NSK_UTS = 0,
	NSK_IPC,
	NSK_MNT,
	NSK_PID,
	NSK_PID_FOR_CHILDREN,
	NSK_NET,
	NSK_TIME,
	NSK_TIME_FOR_CHILDREN,
	NSK_CGROUP,
	NSK_USER,
};

enum cap_set {
	CAPS_EFFECTIVE = 0,
	CAPS_INHERITABLE,
	CAPS_PERMITTED,
};

/* How far followForks and followChildren look up the process tree
 * (real_parent links). Deeper ancestors are not seen: the walk is paid on
 * every evaluation of the entry. */
#define MAX_ANCESTORS 32

enum act_flag {
	ACT_POST = 1,
	ACT_SIGKILL = 2,
	ACT_SIGNAL = 4,
	ACT_OVERRIDE = 8, /* fmod_ret only: the function returns err instead */
	/* hook.c only: follow the sock of the argument the selector names
	 * (TrackSock), or stop following it (UntrackSock) */
	ACT_TRACKSOCK = 16,
	ACT_UNTRACKSOCK = 32,
	/* hook.c only: Post's kernelStackTrace and userStackTrace, the stack
	 * ids in gen_rec's kstack and ustack */
	ACT_KSTACK = 64,
	ACT_USTACK = 128,
};

/* arg_conf.reg of a data: entry with source current_task (bpf/hook.c):
 * the current task_struct rather than a parameter */
#define REG_TASK 0x80

struct arg_conf {
	__u8 src;
	__u8 reg;
	__u8 type;
	__u8 str; /* string slot for T_PATH / T_FD */
};

struct match_arg {
	__u8 arg; /* record slot (MK_ARG), enum ns_kind (MK_NS), enum cap_set (MK_CAPS) */
	__u8 op;
	__u8 nvals;
	__u8 kind;  /* enum match_kind */
	__u8 flags; /* MF_* */
	__u8 size;  /* MK_RET: the return value's width in bytes (0: 8) */
	__u16 slot; /* LPM slot for string operators */
	__s64 vals[MAX_VALUES];
};

/* selector.refresh: what of the process's exec record (exec_creds) a
 * match of the selector brings up to date, so that one change is reported
 * once */
enum refresh_flag {
	REFRESH_CAPS = 1,
	REFRESH_NS = 2,
};

struct selector {
	__u8 nmatch;
	__u8 actions;
	__u8 sig;
	__u8 refresh; /* enum refresh_flag */
	__s32 err; /* Override's return value */
	struct match_arg m[MAX_MATCH_ARGS];
};

struct gen_conf {
	/* what makes a hook of one run the same as a hook of the next: a
	 * 64-bit hash of its declaration and policy. hook_id, which records
	 * carry, hashes the same in 32 bits and moves on when it collides
	 * with another policy's, in the order the policies are loaded, which
	 * the next run may not repeat */
	__u64 key;
	__u32 hook_id;
	__u16 slot; /* the hook's counters (HOOK_SLOTS) */
	__u8 nargs;
	__u8 nsel;
	/* the verdict depends only on the variant's file path and mask, so a
	 * "no selector matched" can be remembered per file (dispatch.c) */
	__u8 cacheable;
	/* the hook applies only to the processes of the cgroups hook_cgroups
	 * lists for it (a policy's podSelector, containerSelector or
	 * namespace): a call from any other cgroup matches no selector */
	__u8 scoped;
	/* the agent run that wrote this configuration: its records carry it
	 * (rec_header.run). Not the object's run_tag: a restart adopts the
	 * pinned objects, and the previous run's hooks and this run's then
	 * share one program */
	__u16 run;
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
	/* stack ids in hook.c's stack map, when actions has ACT_KSTACK or
	 * ACT_USTACK; negative: no stack (an error of bpf_get_stackid) */
	__s32 kstack;
	__s32 ustack;
	char data[MAX_STRS * STR_LEN];
};

/* Match strings of every hook an object serves share one trie: the slot
 * (one per filter entry that matches strings) is the first part of the
 * key, so an entry only finds its own values. */
struct lpm_key {
	__u32 prefixlen;
	__u16 slot;
	__u8 data[LPM_DATA];
};

/* A scoped hook's cgroup: the hook's slot (unique among the object's live
 * hooks, where ids of two versions of a policy may be equal) and the
 * cgroup v2 id (bpf_get_current_cgroup_id) of a container it applies to. */
struct cgroup_key {
	__u32 slot;
	__u32 pad;
	__u64 cgroup;
};

const struct gen_rec *unused_gen_rec __attribute__((unused));
const struct cgroup_key *unused_cgroup_key __attribute__((unused));
/* the enums user space encodes, kept in BTF for bpf2go to generate them
 * into package bpf: pkg/sensor's constants are defined from those */
const enum arg_src *unused_arg_src __attribute__((unused));
const enum arg_type *unused_arg_type __attribute__((unused));
const enum match_op *unused_match_op __attribute__((unused));
const enum match_kind *unused_match_kind __attribute__((unused));
const enum match_flag *unused_match_flag __attribute__((unused));
const enum ns_kind *unused_ns_kind __attribute__((unused));
const enum cap_set *unused_cap_set __attribute__((unused));
const enum refresh_flag *unused_refresh_flag __attribute__((unused));
const enum act_flag *unused_act_flag __attribute__((unused));
const enum gen_stat *unused_gen_stat __attribute__((unused));

/* The prefilter's match slots, one per string slot of the record: the
 * union of the values of every hook an object serves whose selectors all
 * need that string to equal or start with one of theirs. A list whose
 * hooks are all such names it (pre: 1 + the string slot), and a call
 * whose string is none of those values runs none of its hooks: one
 * lookup, however many policies there are. No hook gets these slots. */
#define UNION_SLOT(s) (0xffff - ((s) & 1))

/* the limits above, for bpf2go to generate (macros are not in BTF) */
enum hook_limit {
	HL_MAX_ARGS = MAX_ARGS,
	HL_MAX_SELECTORS = MAX_SELECTORS,
	HL_MAX_MATCH_ARGS = MAX_MATCH_ARGS,
	HL_MAX_VALUES = MAX_VALUES,
	HL_MAX_STRS = MAX_STRS,
	HL_LPM_DATA = LPM_DATA,
	HL_MAX_I32ARR = MAX_I32ARR,
	HL_REG_TASK = REG_TASK,
	HL_STR_LEN = STR_LEN,
	HL_UNION_SLOT = UNION_SLOT(0),
};
const enum hook_limit *unused_hook_limit __attribute__((unused));
const struct gen_conf *unused_gen_conf __attribute__((unused));
const struct lpm_key *unused_lpm_key __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HOOK_STRINGS);
	__type(key, struct lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} strings SEC(".maps");

/* the cgroups of scoped hooks (gen_conf.scoped); user space keeps them as
 * the containers of the matching pods come and go */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOOK_CGROUPS);
	__type(key, struct cgroup_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hook_cgroups SEC(".maps");

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
	__u16 ftype = BPF_CORE_READ(dentry, d_inode, i_mode) & STR_F_TYPE;

	pos = resolve_path(t, mnt, dentry, &pflags);
	scratch = bpf_map_lookup_elem(&path_heap, &zero);
	if (!scratch || pos >= PATH_MAX_LEN)
		return;
	len = (PATH_MAX_LEN - pos) & PATH_MASK;
	bpf_probe_read_kernel(&r->data[(s & 1) * STR_LEN], len, &scratch->buf[pos & PATH_MASK]);
	r->str_len[s & 1] = len;
	r->str_flags[s & 1] = (pflags & ~STR_F_TYPE) | ftype;
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

/* put_user_i32arr copies the int32 array at uptr in user memory into
 * string slot s & 1 of r: s >> 1 elements (SRC_REG_I32ARR). A fault
 * leaves the slot empty; user space then reports no values. */
static __always_inline void put_user_i32arr(struct gen_rec *r, __u32 s, long uptr)
{
	__u32 n = (s >> 1) & 127;

	if (n > MAX_I32ARR)
		n = MAX_I32ARR;
	if (bpf_probe_read_user(&r->data[(s & 1) * STR_LEN], n * sizeof(__s32), (void *)uptr)) {
		r->str_len[s & 1] = 0;
		return;
	}
	r->str_len[s & 1] = n * sizeof(__s32);
}

/* swap_byte swaps key bytes i and n-1-i (n at data), reversing the key's
 * first n bytes. Under bpf_loop, so the verifier checks one swap, not 127. */
static long swap_byte(__u32 i, void *data)
{
	__u32 n = *(__u32 *)data, zero = 0;
	struct lpm_key *k;
	__u64 a, b;
	__u8 c;

	k = bpf_map_lookup_elem(&key_heap, &zero);
	if (!k || i >= n / 2)
		return 1;
	/* masked first, as in eval_match: a compare on the full registers
	 * would not bound them */
	a = i & 0xff;
	b = (n - 1 - i) & 0xff;
	barrier_var(a);
	barrier_var(b);
	if (a >= LPM_DATA || b >= LPM_DATA)
		return 1;
	c = k->data[a];
	k->data[a] = k->data[b];
	k->data[b] = c;
	return 0;
}

/* match_bytes looks the len-byte string at s (kernel memory: a record
 * string or the path scratch buffer) up among the values of match slot.
 * Equal entries are stored with their NUL, so they match only whole
 * strings; Prefix entries without, so they match any string they start.
 * Postfix entries are stored reversed and looked up with the string's
 * reversed tail. */
static __always_inline bool match_bytes(const char *s, __u32 len, __u32 slot, bool postfix)
{
	struct lpm_key *k;
	__u32 zero = 0;

	k = bpf_map_lookup_elem(&key_heap, &zero);
	if (!k)
		return false;
	if (postfix) {
		__u32 n = len;

		if (len > LPM_DATA) {
			s += len - LPM_DATA;
			n = LPM_DATA;
		}
		/* a no-op the verifier needs: clang may otherwise size the read
		 * with a register whose bound it never checked */
		barrier_var(n);
		/* a compare, not a mask: the verifier then knows n <= LPM_DATA;
		 * a mask with 0xff would allow 255, and clang turns a clamp after
		 * it into "== 255", from which 6.1's verifier learns nothing */
		if (n > LPM_DATA)
			n = LPM_DATA;
		barrier_var(n);
		bpf_probe_read_kernel(k->data, n, s);
		bpf_loop(n / 2, swap_byte, &n, 0);
		k->prefixlen = 16 + n * 8;
	} else {
		if (len > LPM_DATA - 1)
			len = LPM_DATA - 1;
		bpf_probe_read_kernel(k->data, LPM_DATA, s);
		k->data[len] = 0;
		k->prefixlen = 16 + (len + 1) * 8;
	}
	k->slot = slot;
	return bpf_map_lookup_elem(&strings, k) != NULL;
}

static __always_inline bool in_set(__s64 x, struct match_arg *m)
{
	bool hit = false;

	for (int i = 0; i < MAX_VALUES; i++) {
		if (i >= m->nvals)
			break;
		hit |= x == m->vals[i];
	}
	return hit;
}

static __always_inline bool match_int(__s64 x, struct match_arg *m)
{
	bool hit = false;

	if (m->op == MOP_IN_RANGE || m->op == MOP_NOT_IN_RANGE) {
		/* (lo, hi) pairs: x - lo <= hi - lo, unsigned, holds for
		 * lo <= x <= hi whether the type is signed or not (user space
		 * checks lo <= hi in its order). Its own loop: a case of the
		 * one below would be walked once per value and operator. */
		for (int i = 0; i < MAX_VALUES; i += 2) {
			if (i >= m->nvals)
				break;
			hit |= (__u64)(x - m->vals[i]) <= (__u64)(m->vals[i + 1] - m->vals[i]);
		}
		return m->op == MOP_NOT_IN_RANGE ? !hit : hit;
	}
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
		case MOP_FILE_TYPE:
		case MOP_NOT_FILE_TYPE:
			hit |= x == m->vals[i];
			break;
		}
	}
	return m->op == MOP_NOT_EQUAL || m->op == MOP_NOT_FILE_TYPE ? !hit : hit;
}

static __always_inline bool negated(struct match_arg *m)
{
	return m->op == MOP_NOT_EQUAL || m->op == MOP_NOT_PREFIX || m->op == MOP_NOT_POSTFIX;
}

/* ret_value narrows the return value to the declared width of returnArg:
 * a kretprobe reads the whole register, whose upper half is undefined
 * after a function returning int. */
static __always_inline __s64 ret_value(long ret, struct match_arg *m)
{
	bool sign = m->flags & MF_SIGNED;

	switch (m->size) {
	case 1:
		return sign ? (__s64)(__s8)ret : (__s64)(__u8)ret;
	case 2:
		return sign ? (__s64)(__s16)ret : (__s64)(__u16)ret;
	case 4:
		return sign ? (__s64)(__s32)ret : (__s64)(__u32)ret;
	}
	return ret;
}

/* upid_of returns the innermost (pid number, namespace) of pid: the one
 * its task sees itself as. */
static __always_inline struct upid upid_of(struct pid *pid)
{
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]);
	return up;
}

/* ns_inum returns the inode number of namespace kind of task t, as
 * /proc/<pid>/ns/<kind> shows it. */
static __always_inline __s64 ns_inum(struct task_struct *t, __u32 kind)
{
	struct nsproxy *ns = BPF_CORE_READ(t, nsproxy);

	switch (kind) {
	case NSK_UTS:
		return BPF_CORE_READ(ns, uts_ns, ns.inum);
	case NSK_IPC:
		return BPF_CORE_READ(ns, ipc_ns, ns.inum);
	case NSK_MNT:
		return BPF_CORE_READ(ns, mnt_ns, ns.inum);
	case NSK_PID: {
		struct upid up = upid_of(BPF_CORE_READ(t, thread_pid));

		return BPF_CORE_READ(up.ns, ns.inum);
	}
	case NSK_PID_FOR_CHILDREN:
		return BPF_CORE_READ(ns, pid_ns_for_children, ns.inum);
	case NSK_NET:
		return BPF_CORE_READ(ns, net_ns, ns.inum);
	case NSK_TIME:
		return BPF_CORE_READ(ns, time_ns, ns.inum);
	case NSK_TIME_FOR_CHILDREN:
		return BPF_CORE_READ(ns, time_ns_for_children, ns.inum);
	case NSK_CGROUP:
		return BPF_CORE_READ(ns, cgroup_ns, ns.inum);
	case NSK_USER:
		return BPF_CORE_READ(t, cred, user_ns, ns.inum);
	}
	return 0;
}

/* read_cap_set reads capability set k (enum cap_set) of t. */
static __always_inline __u64 read_cap_set(struct task_struct *t, __u32 k)
{
	const struct cred *c = BPF_CORE_READ(t, cred);
	__u64 v = 0;

	/* 8 bytes on every kernel: {u64 val} since 6.3, {u32 cap[2]} before */
	switch (k) {
	case CAPS_EFFECTIVE:
		bpf_core_read(&v, sizeof(v), &c->cap_effective);
		break;
	case CAPS_INHERITABLE:
		bpf_core_read(&v, sizeof(v), &c->cap_inheritable);
		break;
	case CAPS_PERMITTED:
		bpf_core_read(&v, sizeof(v), &c->cap_permitted);
		break;
	}
	return v;
}

/* current_ns_inum and current_caps are ns_inum and read_cap_set for the
 * current task as global functions: the verifier checks their reads once,
 * however many filters call them. */
__noinline __u64 current_ns_inum(__u32 kind)
{
	return (__u32)ns_inum((struct task_struct *)bpf_get_current_task(), kind);
}

__noinline __u64 current_caps(__u32 set)
{
	return read_cap_set((struct task_struct *)bpf_get_current_task(), set);
}

/* match_caps checks a matchCapabilities entry on t's credentials: In holds
 * when the set has any of the listed capabilities, NotIn when it has none.
 * With isNamespaceCapability neither holds in the host's user namespace
 * (vals[1]), as in Tetragon: the entry is about capabilities a process
 * holds over a user namespace of its own. */
static __always_inline bool match_caps(struct match_arg *m)
{
	bool hit;

	if ((m->flags & MF_NS_CAP) && current_ns_inum(NSK_USER) == (__u32)m->vals[1])
		return false;
	hit = (current_caps(m->arg) & m->vals[0]) != 0;
	return m->op == MOP_NOT_EQUAL ? !hit : hit;
}

struct ns_change_ctx {
	struct exec_creds *rec;
	__u64 mask; /* a bit per enum ns_kind to compare */
	bool changed;
	bool refresh; /* write the current inode numbers to rec instead */
};

/* ns_change_step compares the current task's namespace k with the exec
 * record, or with x->refresh writes it there. Under bpf_loop, so that the
 * verifier checks the step once rather than once per kind. */
static long ns_change_step(__u32 k, void *data)
{
	struct ns_change_ctx *x = data;
	__u32 now;

	if (k > NSK_USER)
		return 1;
	if (!(x->mask & (1ULL << k)))
		return 0;
	now = current_ns_inum(k);
	if (x->refresh) {
		x->rec->ns[k] = now;
		return 0;
	}
	/* a namespace the record lacks (0) is not compared */
	if (x->rec->ns[k] && x->rec->ns[k] != now) {
		x->changed = true;
		return 1;
	}
	return 0;
}

/* match_change checks a matchCapabilityChanges or matchNamespaceChanges
 * entry: the current task's capability set or namespaces against those of
 * its process's exec record. As in Tetragon, capabilities: In holds when
 * a listed capability differs, NotIn when only unlisted ones do;
 * namespaces: In holds when a listed namespace differs, NotIn when an
 * unlisted one does (a namespace the record lacks, 0, is not compared). A
 * process without a record matches neither. Nothing large on the stack:
 * match_process runs deep in bpf_loop callbacks. */
static __always_inline bool match_change(struct task_struct *t, struct match_arg *m)
{
	__u32 tgid = BPF_CORE_READ(t, tgid), k;
	struct ns_change_ctx x = {};
	struct exec_creds *rec;
	__u64 mask = m->vals[0], was, cur;
	bool in = m->op != MOP_NOT_EQUAL;

	rec = bpf_map_lookup_elem(&exec_creds, &tgid);
	if (!rec)
		return false;
	if (m->kind == MK_CAP_CHANGE) {
		if ((m->flags & MF_NS_CAP) && current_ns_inum(NSK_USER) == (__u32)m->vals[1])
			return false;
		k = m->arg;
		if (k > CAPS_PERMITTED)
			return false;
		was = rec->caps[k];
		cur = current_caps(k);
		if ((was & mask) != (cur & mask))
			return in;
		return was != cur && !in;
	}
	x.rec = rec;
	/* the namespaces compared: the listed ones for In, the others for NotIn */
	x.mask = in ? mask : ~mask;
	bpf_loop(NSK_USER + 1, ns_change_step, &x, 0);
	return x.changed;
}

/* refresh_creds brings the current process's exec record up to date after
 * a selector with change entries matched (what: enum refresh_flag), so
 * that one change is reported once. Global, as match_process. */
__noinline int refresh_creds(__u32 what)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = BPF_CORE_READ(t, tgid);
	struct ns_change_ctx x = {.mask = ~0ULL, .refresh = true};
	struct exec_creds *rec;

	rec = bpf_map_lookup_elem(&exec_creds, &tgid);
	if (!rec)
		return 0;
	if (what & REFRESH_CAPS) {
		rec->caps[CAPS_EFFECTIVE] = current_caps(CAPS_EFFECTIVE);
		rec->caps[CAPS_INHERITABLE] = current_caps(CAPS_INHERITABLE);
		rec->caps[CAPS_PERMITTED] = current_caps(CAPS_PERMITTED);
	}
	if (what & REFRESH_NS) {
		x.rec = rec;
		bpf_loop(NSK_USER + 1, ns_change_step, &x, 0);
	}
	return 0;
}

/* match_exe looks the path of executable f, as task t sees it, up among
 * the values of match slot. */
static __always_inline bool match_exe(struct task_struct *t, struct file *f, __u32 slot, bool postfix)
{
	struct path_scratch *s;
	__u32 zero = 0, flags = 0, pos;

	pos = resolve_path(t, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), &flags);
	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s || pos >= PATH_MAX_LEN)
		return false;
	/* the path runs from pos to the end of the buffer */
	return match_bytes(&s->buf[pos & PATH_MASK], PATH_MAX_LEN - pos, slot, postfix);
}

struct proc_ctx {
	struct match_arg *m;
	struct task_struct *t;
	/* the executable last looked up: a process that forked without
	 * exec shares its parent's, which is then not resolved again */
	struct file *last;
	bool hit;
};

/* proc_step checks the process of task x->t against the positive form of
 * a matchPIDs, matchBinaries or matchParentBinaries entry (In, Prefix,
 * Postfix), then moves to its parent. It stops at the first process that matches and at the top
 * of the tree (the parent of init is the idle task, tgid 0); bpf_loop's
 * count bounds the walk: 1, or MAX_ANCESTORS with MF_FOLLOW. */
static long proc_step(__u32 i, void *data)
{
	struct proc_ctx *x = data;
	struct task_struct *t = x->t, *p;
	struct match_arg *m = x->m;
	struct file *f;

	if (m->kind == MK_PID) {
		__s64 pid = BPF_CORE_READ(t, tgid);

		if (m->flags & MF_NS_PID) {
			struct upid up = upid_of(BPF_CORE_READ(t, group_leader, thread_pid));

			pid = up.nr;
		}
		x->hit = in_set(pid, m);
	} else {
		f = BPF_CORE_READ(t, mm, exe_file);
		if (f && f != x->last) {
			x->last = f;
			x->hit = match_exe(t, f, m->slot, m->op == MOP_POSTFIX || m->op == MOP_NOT_POSTFIX);
		}
	}
	if (x->hit)
		return 1;
	p = BPF_CORE_READ(t, real_parent);
	if (!p || p == t || BPF_CORE_READ(p, tgid) == 0)
		return 1;
	x->t = p;
	return 0;
}

/* match_process checks an entry on the current process: matchNamespaces,
 * matchCapabilities, and matchPIDs or matchBinaries, with MF_FOLLOW on its
 * ancestors too. A global function: the verifier checks it once, on its
 * own, where a static one is checked again in every pass over the
 * bpf_loop callbacks that call it (inline, these filters made the
 * syscall-tracepoint program's verification 4 times as long). */
__noinline int match_process(struct match_arg *m)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct proc_ctx p = {};

	if (!m)
		return 0;
	switch (m->kind) {
	case MK_NS:
		return match_int(current_ns_inum(m->arg), m);
	case MK_CAPS:
		return match_caps(m);
	case MK_CAP_CHANGE:
	case MK_NS_CHANGE:
		return match_change(t, m);
	case MK_PID:
	case MK_BINARY:
		p.m = m;
		p.t = t;
		if (m->flags & MF_PARENT) {
			struct task_struct *parent = BPF_CORE_READ(t, real_parent);

			/* init and kernel threads' parents (the idle task) run
			 * no executable: no parent binary matches */
			if (!parent || BPF_CORE_READ(parent, tgid) == 0)
				return negated(m);
			p.t = parent;
		}
		bpf_loop(m->flags & MF_FOLLOW ? MAX_ANCESTORS : 1, proc_step, &p, 0);
		return negated(m) ? !p.hit : p.hit;
	}
	return 0;
}

/* match_value is match_int as a global function, as match_process. */
__noinline int match_value(__s64 x, struct match_arg *m)
{
	return m && match_int(x, m);
}

/* match_rec_str looks string slot s of the record up among the values of
 * match slot. Global, as match_process. */
__noinline int match_rec_str(__u32 s, __u32 slot, __u32 postfix)
{
	struct gen_rec *r;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	return match_bytes(&r->data[(s & 1) * STR_LEN], r->str_len[s & 1], slot, postfix);
}

/* prefilter_miss reports whether a list's prefilter (pre: 1 + a string
 * slot, 0 for none; see UNION_SLOT) rules the call out, the record
 * holding its arguments */
static __always_inline bool prefilter_miss(__u32 pre)
{
	return pre && !match_rec_str(pre - 1, UNION_SLOT(pre - 1), 0);
}

struct substr_ctx {
	__u32 len;
	__u32 slot;
	bool hit;
};

/* lower_step lower-cases byte i of the path scratch buffer (ASCII, as
 * Tetragon's SubStringIgnCase). */
static long lower_step(__u32 i, void *data)
{
	struct path_scratch *s;
	__u32 zero = 0;
	char c;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s)
		return 1;
	c = s->buf[i & PATH_MASK];
	if (c >= 'A' && c <= 'Z')
		s->buf[i & PATH_MASK] = c + ('a' - 'A');
	return 0;
}

/* substr_step looks the string's tail from position i (in the path
 * scratch buffer) up among the prefix entries of the match slot: an entry
 * found is a value that occurs at i. It stops the loop at a hit. */
static long substr_step(__u32 i, void *data)
{
	struct substr_ctx *x = data;
	struct path_scratch *s;
	struct lpm_key *k;
	__u32 zero = 0, n;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	k = bpf_map_lookup_elem(&key_heap, &zero);
	if (!s || !k || i >= x->len)
		return 1;
	n = x->len - i;
	/* as in match_bytes: bound the size the helper is given, with a
	 * compare the verifier learns from */
	barrier_var(n);
	if (n > LPM_DATA)
		n = LPM_DATA;
	barrier_var(n);
	bpf_probe_read_kernel(k->data, n, &s->buf[i & PATH_MASK]);
	k->slot = x->slot;
	k->prefixlen = 16 + n * 8;
	if (bpf_map_lookup_elem(&strings, k)) {
		x->hit = true;
		return 1;
	}
	return 0;
}

/* match_substr checks SubString (SubStringIgnCase with igncase) on string
 * slot s of the record: whether one of the values of match slot occurs in
 * it. The string is copied to the path scratch buffer (and lower-cased
 * there for igncase), then each of its positions is looked up: a value
 * longer than LPM_DATA bytes is refused by user space. Global, as
 * match_process. */
__noinline int match_substr(__u32 s, __u32 slot, __u32 igncase)
{
	struct substr_ctx x = {.slot = slot};
	struct path_scratch *p;
	struct gen_rec *r;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&rec_heap, &zero);
	p = bpf_map_lookup_elem(&path_heap, &zero);
	if (!r || !p)
		return 0;
	x.len = r->str_len[s & 1] & PATH_MASK;
	bpf_probe_read_kernel(p->buf, x.len, &r->data[(s & 1) * STR_LEN]);
	if (igncase)
		bpf_loop(x.len, lower_step, NULL, 0);
	bpf_loop(x.len, substr_step, &x, 0);
	return x.hit;
}

/* match_file_type checks FileType and NotFileType on string slot s of the
 * record: the type of the file put_path resolved there. No file (nothing
 * resolved) holds for neither. Global, as match_process. */
__noinline int match_file_type(struct match_arg *m, __u32 s)
{
	struct gen_rec *r;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r || !m || !r->str_len[s & 1])
		return 0;
	return match_int(r->str_flags[s & 1] & STR_F_TYPE, m);
}

/* match_sock checks a socket operator on the sock, socket, skb or
 * sockaddr argument (src) whose fields are in string slot s of the record. A sockaddr has
 * one address and port, which Tetragon's operators name SAddr and SPort.
 * An argument that could not be read holds for no operator, negated or
 * not; an address of a family other than AF_INET and AF_INET6 is in no
 * CIDR. Global, as match_process. */
__noinline int match_sock(struct match_arg *m, __u32 s, __u32 src)
{
	struct gen_rec *r;
	struct lpm_key *k;
	__u32 zero = 0, op;
	__u64 x = 0;
	__u16 family;
	const __u8 *d, *addr;
	bool hit = false;

	if (!m)
		return 0;
	r = bpf_map_lookup_elem(&rec_heap, &zero);
	k = bpf_map_lookup_elem(&key_heap, &zero);
	if (!r || !k)
		return 0;
	s &= 1;
	if (!r->str_len[s])
		return 0;
	d = (const __u8 *)&r->data[s * STR_LEN];
	op = m->op;
	__builtin_memcpy(&family, d, sizeof(family));
	if (src != SRC_REG_SOCKADDR) {
		const struct sock_data *sd = (const void *)d;

		addr = op == MOP_SADDR || op == MOP_NOT_SADDR ? sd->saddr : sd->daddr;
		switch (op) {
		case MOP_SPORT:
		case MOP_NOT_SPORT:
			x = sd->sport;
			break;
		case MOP_DPORT:
		case MOP_NOT_DPORT:
			x = sd->dport;
			break;
		case MOP_PROTOCOL:
			x = sd->protocol;
			break;
		case MOP_STATE:
			x = sd->state;
			break;
		default:
			x = family;
		}
	} else {
		__u16 port;

		/* sockaddr_in: port at 2, address at 4; sockaddr_in6: port at
		 * 2, address at 8; both in network order */
		__builtin_memcpy(&port, d + 2, sizeof(port));
		addr = family == 10 ? d + 8 : d + 4;
		x = op == MOP_SPORT || op == MOP_NOT_SPORT ? bpf_ntohs(port) : family;
	}
	if (op >= MOP_SADDR && op <= MOP_NOT_DADDR) {
		k->slot = m->slot;
		if (family == 2) {
			k->data[0] = ADDR_KEY_V4;
			__builtin_memcpy(&k->data[1], addr, 4);
			k->prefixlen = 16 + 8 + 32;
			hit = bpf_map_lookup_elem(&strings, k) != NULL;
		} else if (family == 10) {
			k->data[0] = ADDR_KEY_V6;
			__builtin_memcpy(&k->data[1], addr, 16);
			k->prefixlen = 16 + 8 + 128;
			hit = bpf_map_lookup_elem(&strings, k) != NULL;
		}
	} else {
		for (int i = 0; i < MAX_VALUES; i++) {
			__u64 v = m->vals[i];

			if (i >= m->nvals)
				break;
			hit |= (__u32)v <= x && x <= v >> 32;
		}
	}
	switch (op) {
	case MOP_NOT_SADDR:
	case MOP_NOT_DADDR:
	case MOP_NOT_SPORT:
	case MOP_NOT_DPORT:
		return !hit;
	}
	return hit;
}

struct match_ctx {
	struct gen_conf *c;
	struct gen_rec *r;
	long ret;
	__u32 sel;
	bool ok;
};

/* eval_match checks filter entry j of one selector; it stops the loop at
 * the first entry that does not hold. */
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
	__s64 v;
	bool hit;

	if (mi >= MAX_MATCH_ARGS || si >= MAX_SELECTORS) {
		x->ok = false;
		return 1;
	}
	sel = &x->c->sel[si];
	m = &sel->m[mi];
	/* one inlined match_int for both integer kinds: each copy is an
	 * unrolled loop the verifier walks */
	if (m->kind == MK_RET) {
		v = ret_value(x->ret, m);
	} else if (m->kind != MK_ARG) {
		hit = match_process(m);
		goto out;
	} else {
		ai = m->arg;
		if (ai >= MAX_ARGS) {
			x->ok = false;
			return 1;
		}
		a = &x->c->args[ai];
		if (a->src == SRC_REG_SOCK || a->src == SRC_REG_SOCKADDR || a->src == SRC_REG_SOCKET ||
		    a->src == SRC_REG_SKB) {
			hit = match_sock(m, a->str, a->src);
			goto out;
		}
		if (m->op == MOP_SUBSTR || m->op == MOP_SUBSTR_IGNCASE) {
			hit = match_substr(a->str, m->slot, m->op == MOP_SUBSTR_IGNCASE);
			goto out;
		}
		if (m->op == MOP_FILE_TYPE || m->op == MOP_NOT_FILE_TYPE) {
			hit = match_file_type(m, a->str);
			goto out;
		}
		if (a->type != T_INT) {
			hit = match_rec_str(a->str, m->slot, m->op == MOP_POSTFIX || m->op == MOP_NOT_POSTFIX);
			if (negated(m))
				hit = !hit;
			goto out;
		}
		v = x->r->ints[ai];
	}
	hit = match_value(v, m);
out:
	if (!hit) {
		x->ok = false;
		return 1;
	}
	return 0;
}

/* in_scope reports whether the current task is in a cgroup the hook
 * applies to: always for a hook without a scope. Checked first, before
 * any selector, by every mechanism (select). */
static __always_inline bool in_scope(struct gen_conf *c)
{
	struct cgroup_key k = {};

	if (!c->scoped)
		return true;
	k.slot = c->slot;
	k.cgroup = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&hook_cgroups, &k) != NULL;
}

struct select_ctx {
	struct gen_conf *c;
	struct gen_rec *r;
	long ret;
	int found;
};

/* eval_selector checks selector s; it stops the loop at the first one
 * whose every filter entry holds. */
static long eval_selector(__u32 s, void *data)
{
	struct select_ctx *x = data;
	struct match_ctx m = {.c = x->c, .r = x->r, .ret = x->ret, .sel = s, .ok = true};

	if (s >= MAX_SELECTORS)
		return 1;
	bpf_loop(x->c->sel[s].nmatch, eval_match, &m, 0);
	if (!m.ok)
		return 0;
	x->found = s;
	/* here, in the callback, rather than with the actions: the verifier
	 * checks it once instead of on every path of the caller */
	if (x->c->sel[s].refresh)
		refresh_creds(x->c->sel[s].refresh);
	return 1;
}

/* select returns the index of the first selector whose every filter entry
 * holds for a call that returned ret (0 at entry), or -1. No selectors
 * means every call matches. The loops run under bpf_loop: the verifier
 * then checks one selector and one entry instead of every combination of
 * the unrolled loops, which kept a hook's load in the seconds. */
static __always_inline int select(struct gen_conf *c, struct gen_rec *r, long ret)
{
	struct select_ctx x = {.c = c, .r = r, .ret = ret, .found = -1};

	if (!in_scope(c))
		return -1;
	if (c->nsel == 0)
		return MAX_SELECTORS;
	bpf_loop(c->nsel, eval_selector, &x, 0);
	return x.found;
}

/* take_actions carries out the signal actions of selector s
 * (MAX_SELECTORS: the hook has none, so Post) for the current task and returns the value an
 * Override selector asks the function to return, else 0; *acts gets the
 * selector's actions. */
static __always_inline long take_actions(struct gen_conf *c, int s, __u32 *acts)
{
	__u32 a = ACT_POST, sig = 0, st = c->slot * GS_MAX;
	long err = 0;

	stat_inc(st + GS_MATCHED);
	/* the selector read in one bounded block: an index checked in one
	 * place and used in another can reach the verifier as two registers,
	 * one of them unbounded */
	if (s >= 0 && s < MAX_SELECTORS) {
		a = c->sel[s].actions;
		sig = c->sel[s].sig;
		err = c->sel[s].err;
	}
	if (a & ACT_SIGKILL) {
		bpf_send_signal(9);
		stat_inc(st + GS_SIGNALS);
	} else if (a & ACT_SIGNAL) {
		bpf_send_signal(sig);
		stat_inc(st + GS_SIGNALS);
	}
	*acts = a;
	return a & ACT_OVERRIDE ? err : 0;
}

/* post_rec writes r, the record of a call selector s matched, to the ring
 * buffer. */
static __always_inline void post_rec(struct gen_conf *c, struct gen_rec *r, int s, __u32 acts, __u64 id, long nr, long ret)
{
	__u32 size, st = c->slot * GS_MAX;

	r->pid = id >> 32;
	r->tid = (__u32)id;
	r->hook_id = c->hook_id;
	r->syscall = nr;
	r->sel = s;
	r->actions = acts;
	r->ret = ret;
	/* send only the used part of data; not masked: a slot may be full
	 * (STR_LEN bytes of an iov_iter), and the size is bounded below */
	if (r->str_len[1])
		size = offsetof(struct gen_rec, data) + STR_LEN + r->str_len[1];
	else
		size = offsetof(struct gen_rec, data) + r->str_len[0];
	if (size > sizeof(*r))
		size = sizeof(*r);
	rec_init(&r->hdr, OP_GENERIC, size);
	r->hdr.run = c->run;
	if (bpf_ringbuf_output(&events, r, size, 0))
		stat_inc(st + GS_DROPS);
	else
		stat_inc(st + GS_POSTED);
}

/* act_and_post carries out the actions of selector s (MAX_SELECTORS: the
 * hook has none, so Post) for the current task, and writes r to the ring
 * buffer when they include Post. It returns the value an Override selector
 * asks the function to return, else 0. */
static __always_inline long act_and_post(struct gen_conf *c, struct gen_rec *r, int s, __u64 id, long nr, long ret)
{
	__u32 acts;
	long err = take_actions(c, s, &acts);

	if (acts & ACT_POST)
		post_rec(c, r, s, acts, id, nr, ret);
	return err;
}
