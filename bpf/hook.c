//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One TracingPolicy hook whose program receives the hooked call's
 * parameters: a kprobe on a kernel function (a kretprobe too for return:
 * true, an fmod_ret program for Override), an fentry or fexit program
 * (fentries:, the kprobe spec), a BPF LSM program (lsmhooks:), a
 * perf or raw tracepoint (tracepoints:), or a uprobe on a user function
 * (uprobes:, which run kprobe-type programs). Each program only gathers the
 * parameters into struct raw_args; what follows is common. Like dispatch.c,
 * the object serves many hooks, configured by data: it is loaded once per
 * attach point and layout (cfg below), and every policy's hook there is its
 * arguments (which parameter, read as what) and selectors, in the same
 * layout as dispatch.c's (lib/hook.h), so both objects match and record
 * alike, and a place in the object's list of hooks.
 *
 * Settings fixed at load time are one volatile const struct (cfg): the
 * verifier then drops the branches a hook does not use (a syscall
 * wrapper's inner registers, parameters the function does not have). */
/* Hooks one object serves: every policy's hook on the same attach point
 * with the same load-time settings (cfg) is an entry in its maps, so a
 * second policy on a function adds data, not a program. The trie of match
 * strings and the cgroups of scoped hooks are allocated as used. */
#define POINT_SLOTS 1024
#define HOOK_SLOTS POINT_SLOTS
#define HOOK_STRINGS 16384
#define HOOK_CGROUPS 16384

#include "lib/common.h"
#include "lib/path.h"
#include "lib/hook.h"
#include "lib/dns.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_RESOLVE 8
#define TP_FIELDS 6

#include "lib/usdt.h"

/* A hook's settings fixed at load time, one volatile const (set by user
 * space before loading: pkg/sensor's ProgHookSpec): the verifier reads
 * them as constants and drops the branches a hook does not use. */
struct hook_cfg {
	/* the object serves one hook, and no other hook shares it: one that
	 * records stacks (which needs the program's context), overrides at
	 * return (the verdict fmod_ret hands to fexit is per thread) or
	 * writes registers */
	bool own;
	/* the function is an arch syscall entry point (__x64_sys_*): its one
	 * parameter is the user registers, and the syscall's arguments are
	 * there */
	bool syscall_wrapper;
	/* return: true: the entry probe only saves the parameters, the
	 * return probe evaluates the selectors with them and the return
	 * value */
	bool at_return;
	/* returnArgAction: what the return probe does with the sock the
	 * function returned (sk_alloc), when a selector matched the call
	 * (RET_SOCK_*) */
	__u8 ret_sock_action;
	/* an Override hook that reports the return value (return: true):
	 * the fmod_ret program evaluates the selectors at entry and
	 * overrides, the fexit program posts the matched call with the
	 * value it returned (the overridden one when the function was
	 * skipped) */
	bool override_at_return;
	/* syscall number recorded for a syscall_wrapper hook */
	__u32 syscall_nr;
	/* parameters to read (no more than the function has) */
	__u32 nparams;
	/* per argument slot: integer width in bytes (0: 8) and signedness.
	 * Not in struct arg_conf, which dispatch.c shares: widening arg_conf
	 * made the verifier process 9% more instructions for dispatch.c's
	 * sys_exit program (514k -> 562k of the 1M limit, on 6.18). */
	__u8 arg_size[MAX_ARGS];
	__u8 arg_signed[MAX_ARGS];
	/* resolve: per argument slot, the struct members followed from the
	 * parameter before it is read (res_steps of them): add res_off, then
	 * read res_load bytes there (8: a pointer to follow, or the final
	 * integer; 0: keep the address, for an embedded struct or an
	 * array) */
	__u8 res_steps[MAX_ARGS];
	__u32 res_off[MAX_ARGS][MAX_RESOLVE];
	__u8 res_load[MAX_ARGS][MAX_RESOLVE];
	/* tracepoints: where the format field behind parameter slot i sits
	 * in the record, its size in bytes, and how it is read (enum
	 * tp_read) */
	__u16 tp_off[TP_FIELDS];
	__u8 tp_size[TP_FIELDS];
	__u8 tp_read[TP_FIELDS];
	/* per selector: the record slot of the sock argument TrackSock or
	 * UntrackSock names (argSock) */
	__u8 sel_sock_slot[MAX_SELECTORS];
	/* USDT arguments and register writes (lib/usdt.h) */
	struct usdt_cfg usdt;
};

volatile const struct hook_cfg cfg = {};

enum tp_read {
	TP_VALUE = 0,    /* an integer or pointer of tp_size bytes */
	TP_ADDR = 1,     /* an array (char comm[16]): its address */
	TP_DATA_LOC = 2, /* __data_loc: a u32 locating the data in the record */
};

/* the 32-bit (compat) flag of a SRC_REG_SYSCALL64 value */
#define SYSCALL64_32BIT 0x80000000ULL
/* returnArgAction: what the return probe does with the sock the function
 * returned (sk_alloc), when a selector matched the call */
#define RET_SOCK_TRACK 1
#define RET_SOCK_UNTRACK 2

/* The process a tracked socket belongs to (TrackSock). */
struct sock_owner {
	__u32 pid;
	__u32 tid;
};

/* Sockets followed across calls, by struct sock address: shared by every
 * hook (user space gives each object the same map), so that a socket one
 * hook tracks attributes another hook's events on it to its process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* preallocated: kprobe programs cannot use run-time allocated hash
	 * maps on every kernel */
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct sock_owner);
} socktrack SEC(".maps");

/* Post's kernelStackTrace and userStackTrace: the stacks of the calls
 * posted with them, read (and deleted) by user space by the ids in the
 * record. PERF_MAX_STACK_DEPTH frames. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

/* What an skb argument reports: the packet's fields struct sock_data has
 * (family, protocol, addresses, ports; match_sock reads them there), then
 * the skb's own. */
struct skb_data {
	struct sock_data sd;
	__u32 len;
	__u32 priority;
	__u32 mark;
	__u32 hash;
};

/* What a bpf_attr argument reports, as Tetragon's bpf_attr_arg. */
struct bpf_attr_data {
	__u32 prog_type;
	__u32 insn_cnt;
	char prog_name[16]; /* BPF_OBJ_NAME_LEN */
};

/* What a bpf_map argument reports, as Tetragon's bpf_map_arg. */
struct bpf_map_data {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	char name[16]; /* BPF_OBJ_NAME_LEN */
};

/* What a perf_event argument reports, as Tetragon's perf_event_arg: the
 * attr's type, config and config2 (a kprobe's address or offset), the
 * PMU's name, and for an event of the kprobe PMU the function, which the
 * attr names by a pointer into the caller's memory (config1). */
struct perf_event_data {
	__u64 config;
	__u64 probe_addr;
	__u32 type;
	char pmu[16];
	char func[64];
};

/* What a cred argument reports: the ids in struct cred's order (uid, gid,
 * suid, sgid, euid, egid, fsuid, fsgid), then the permitted, effective and
 * inheritable capability sets. */
struct cred_data {
	__u32 ids[8];
	__u64 caps[3];
};

/* What a user_namespace argument reports. */
struct userns_data {
	__s32 level;
	__u32 owner;
	__u32 group;
	__u32 inum;
};

/* What a module argument reports, as Tetragon's module_arg: the taint
 * flags the module sets on the kernel (bit n: TAINT n), whether its
 * signature was verified (sig_ok, a field of kernels with
 * CONFIG_MODULE_SIG only: has_sig says whether it was read) and its name. */
struct module_data {
	__u64 taints;
	__u8 sig_ok;
	__u8 has_sig;
	__u8 pad[6];
	char name[56]; /* MODULE_NAME_LEN */
};

/* struct module's sig_ok, which vmlinux.h (a kernel without
 * CONFIG_MODULE_SIG) lacks: CO-RE finds it where the kernel has it */
struct module___sig {
	bool sig_ok;
} __attribute__((preserve_access_index));

/* 8 slots so that an index masked with 7 stays in bounds */
struct raw_args {
	__u64 a[8];
};

/* The call being evaluated, per CPU: its parameters, its return value
 * and what the hooks so far decided. Off the programs' stacks, which the
 * hook runner's chain of functions and callbacks fills up to the 512 bytes
 * the verifier allows (6.1 counts a bpf_loop callback's frame too). */
struct call {
	struct raw_args ra;
	long ret;
	long err;
	/* the list's prefilter (point_list.pre), for its first hook; and
	 * whether it ruled the call out */
	__u32 pre;
	__u32 passed;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct call);
} call_heap SEC(".maps");

static __always_inline struct raw_args *new_args(void)
{
	struct call *cl;
	__u32 zero = 0;

	cl = bpf_map_lookup_elem(&call_heap, &zero);
	if (!cl)
		return NULL;
	__builtin_memset(&cl->ra, 0, sizeof(cl->ra));
	return &cl->ra;
}

/* the configuration of each hook the object serves, by slot */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POINT_SLOTS);
	__type(key, __u32);
	__type(value, struct gen_conf);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} conf SEC(".maps");

/* The hooks a call runs, in order: rewritten whole by one update of the
 * one entry (key 0), so that a call runs the hooks of one version of a
 * policy, never half of two. pre: the prefilter (UNION_SLOT in
 * lib/hook.h), when every listed hook reads the same arguments; the first
 * hook reads them, and the lookup follows. */
struct point_list {
	__u32 n;
	__u8 pre;
	__u8 pad[3];
	__u32 slot[POINT_SLOTS];
};

/* a list entry's flag: the hook reads the same arguments as the one
 * before it, which are in the record already */
#define SLOT_SAME_ARGS 0x80000000U

enum point_limit {
	PL_POINT_SLOTS = POINT_SLOTS,
	PL_SLOT_SAME_ARGS = SLOT_SAME_ARGS,
};
const enum point_limit *unused_point_limit __attribute__((unused));
const struct point_list *unused_point_list __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct point_list);
} hooks SEC(".maps");

/* the object's own counters, beside its hooks' (stats) */
enum point_stat {
	PS_CALLS = 0,  /* calls of the function that ran the list */
	PS_PASSED = 1, /* of those, calls the prefilter decided: no hook ran */
	PS_MAX = 2,
};
const enum point_stat *unused_point_stat __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} point_stats SEC(".maps");

static __always_inline void point_stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&point_stats, &idx);

	if (v)
		*v += 1;
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid: one call in flight per thread */
	__type(value, struct raw_args);
} entries SEC(".maps");

/* What an override_at_return hook's selectors decided at entry: the
 * selector that matched and its actions. The actions are kept so that the
 * fexit program indexes no selector with a value read from a map: 6.1's
 * verifier lost that index's bound where it was spilled across calls. */
struct verdict {
	__s32 sel;
	__u32 acts;
};

/* per thread, for the fexit program to report */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct verdict);
} verdicts SEC(".maps");

/* extend gives a register the value of argument slot i's declared width:
 * the upper bits of a register carrying a 32-bit parameter are undefined */
static __always_inline __s64 extend(__u64 v, __u32 i)
{
	bool sign;

	if (i >= MAX_ARGS)
		return v;
	sign = cfg.arg_signed[i];
	switch (cfg.arg_size[i]) {
	case 1:
		return sign ? (__s64)(__s8)v : (__s64)(__u8)v;
	case 2:
		return sign ? (__s64)(__s16)v : (__s64)(__u16)v;
	case 4:
		return sign ? (__s64)(__s32)v : (__s64)(__u32)v;
	}
	return v;
}

/* put_str reads a char * that may point to kernel or user memory: BTF does
 * not say which, and a kernel read of a user address fails cleanly. */
static __always_inline void put_str(struct gen_rec *r, __u32 s, const void *p)
{
	char *dst = &r->data[(s & 1) * STR_LEN];
	long n = bpf_probe_read_kernel_str(dst, STR_LEN, p);

	if (n < 0)
		n = bpf_probe_read_user_str(dst, STR_LEN, p);
	r->str_len[s & 1] = n > 0 ? (n - 1) & PATH_MASK : 0;
	r->str_flags[s & 1] = n == STR_LEN ? PATH_F_TRUNCATED : 0;
}

static __always_inline void put_sock(struct gen_rec *r, __u32 s, struct sock *sk)
{
	struct sock_data *d = (void *)&r->data[(s & 1) * STR_LEN];

	__builtin_memset(d, 0, sizeof(*d));
	d->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	d->type = BPF_CORE_READ(sk, sk_type);
	d->protocol = BPF_CORE_READ(sk, sk_protocol);
	d->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	d->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	d->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (d->family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&d->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&d->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		BPF_CORE_READ_INTO((__u32 *)d->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)d->daddr, sk, __sk_common.skc_daddr);
	}
	r->str_len[s & 1] = sizeof(*d);
}

static __always_inline void put_cred(struct gen_rec *r, __u32 s, const struct cred *c)
{
	struct cred_data *d = (void *)&r->data[(s & 1) * STR_LEN];

	__builtin_memset(d, 0, sizeof(*d));
	d->ids[0] = BPF_CORE_READ(c, uid.val);
	d->ids[1] = BPF_CORE_READ(c, gid.val);
	d->ids[2] = BPF_CORE_READ(c, suid.val);
	d->ids[3] = BPF_CORE_READ(c, sgid.val);
	d->ids[4] = BPF_CORE_READ(c, euid.val);
	d->ids[5] = BPF_CORE_READ(c, egid.val);
	d->ids[6] = BPF_CORE_READ(c, fsuid.val);
	d->ids[7] = BPF_CORE_READ(c, fsgid.val);
	/* 8 bytes on every kernel: {u64 val} since 6.3, {u32 cap[2]} before */
	bpf_core_read(&d->caps[0], 8, &c->cap_permitted);
	bpf_core_read(&d->caps[1], 8, &c->cap_effective);
	bpf_core_read(&d->caps[2], 8, &c->cap_inheritable);
	r->str_len[s & 1] = sizeof(*d);
}

static __always_inline void put_userns(struct gen_rec *r, __u32 s, const struct user_namespace *ns)
{
	struct userns_data *d = (void *)&r->data[(s & 1) * STR_LEN];

	d->level = BPF_CORE_READ(ns, level);
	d->owner = BPF_CORE_READ(ns, owner.val);
	d->group = BPF_CORE_READ(ns, group.val);
	d->inum = BPF_CORE_READ(ns, ns.inum);
	r->str_len[s & 1] = sizeof(*d);
}

/* put_skb reads the IPv4 or IPv6 header at the skb's network header and,
 * for TCP, UDP and SCTP, the ports at its transport header (the IPv4
 * header's length when the transport header is not set yet). IPv6
 * extension headers are not walked: the protocol is the first next
 * header. */
static __always_inline void put_skb(struct gen_rec *r, __u32 s, struct sk_buff *skb)
{
	struct skb_data *d = (void *)&r->data[(s & 1) * STR_LEN];
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 ports[2] = {};
	__u8 vihl = 0;

	__builtin_memset(d, 0, sizeof(*d));
	d->len = BPF_CORE_READ(skb, len);
	d->priority = BPF_CORE_READ(skb, priority);
	d->mark = BPF_CORE_READ(skb, mark);
	d->hash = BPF_CORE_READ(skb, hash);
	r->str_len[s & 1] = sizeof(*d);
	if (!head || nh == (__u16)~0U)
		return;
	bpf_probe_read_kernel(&vihl, 1, head + nh);
	if (vihl >> 4 == 4) {
		struct iphdr ip;

		bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
		d->sd.family = 2; /* AF_INET */
		d->sd.protocol = ip.protocol;
		__builtin_memcpy(d->sd.saddr, &ip.saddr, 4);
		__builtin_memcpy(d->sd.daddr, &ip.daddr, 4);
		if (th == (__u16)~0U || th == nh)
			th = nh + (vihl & 0xf) * 4;
	} else if (vihl >> 4 == 6) {
		struct ipv6hdr ip6;

		bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
		d->sd.family = 10; /* AF_INET6 */
		d->sd.protocol = ip6.nexthdr;
		__builtin_memcpy(d->sd.saddr, &ip6.saddr, 16);
		__builtin_memcpy(d->sd.daddr, &ip6.daddr, 16);
		if (th == (__u16)~0U || th == nh)
			th = nh + sizeof(ip6);
	} else {
		return;
	}
	switch (d->sd.protocol) {
	case 6:   /* TCP */
	case 17:  /* UDP */
	case 132: /* SCTP */
		bpf_probe_read_kernel(ports, sizeof(ports), head + th);
		d->sd.sport = bpf_ntohs(ports[0]);
		d->sd.dport = bpf_ntohs(ports[1]);
	}
}

static __always_inline void put_bpf_attr(struct gen_rec *r, __u32 s, union bpf_attr *attr)
{
	struct bpf_attr_data *d = (void *)&r->data[(s & 1) * STR_LEN];

	__builtin_memset(d, 0, sizeof(*d));
	d->prog_type = BPF_CORE_READ(attr, prog_type);
	d->insn_cnt = BPF_CORE_READ(attr, insn_cnt);
	bpf_core_read(d->prog_name, sizeof(d->prog_name), &attr->prog_name);
	r->str_len[s & 1] = sizeof(*d);
}

static __always_inline void put_bpf_map(struct gen_rec *r, __u32 s, struct bpf_map *m)
{
	struct bpf_map_data *d = (void *)&r->data[(s & 1) * STR_LEN];

	__builtin_memset(d, 0, sizeof(*d));
	d->map_type = BPF_CORE_READ(m, map_type);
	d->key_size = BPF_CORE_READ(m, key_size);
	d->value_size = BPF_CORE_READ(m, value_size);
	d->max_entries = BPF_CORE_READ(m, max_entries);
	bpf_core_read(d->name, sizeof(d->name), &m->name);
	r->str_len[s & 1] = sizeof(*d);
}

static __always_inline void put_perf_event(struct gen_rec *r, __u32 s, struct perf_event *e)
{
	struct perf_event_data *d = (void *)&r->data[(s & 1) * STR_LEN];
	const char *pmu;
	__u64 func;

	__builtin_memset(d, 0, sizeof(*d));
	d->type = BPF_CORE_READ(e, attr.type);
	d->config = BPF_CORE_READ(e, attr.config);
	d->probe_addr = BPF_CORE_READ(e, attr.config2);
	pmu = BPF_CORE_READ(e, pmu, name);
	if (pmu)
		bpf_probe_read_kernel_str(d->pmu, sizeof(d->pmu), pmu);
	/* "kprobe": the PMU perf_event_open(2) creates kprobes with */
	if (d->pmu[0] == 'k' && d->pmu[1] == 'p' && d->pmu[2] == 'r' && d->pmu[3] == 'o' &&
	    d->pmu[4] == 'b' && d->pmu[5] == 'e' && d->pmu[6] == 0) {
		func = BPF_CORE_READ(e, attr.config1);
		if (func)
			bpf_probe_read_user_str(d->func, sizeof(d->func), (const void *)func);
	}
	r->str_len[s & 1] = sizeof(*d);
}

static __always_inline void put_module(struct gen_rec *r, __u32 s, struct module *m)
{
	struct module_data *d = (void *)&r->data[(s & 1) * STR_LEN];
	struct module___sig *ms = (void *)m;

	__builtin_memset(d, 0, sizeof(*d));
	d->taints = BPF_CORE_READ(m, taints);
	if (bpf_core_field_exists(ms->sig_ok)) {
		d->has_sig = 1;
		d->sig_ok = BPF_CORE_READ(ms, sig_ok);
	}
	bpf_core_read(d->name, sizeof(d->name), &m->name);
	r->str_len[s & 1] = sizeof(*d);
}

/* put_sockaddr copies a struct sockaddr_in or sockaddr_in6 as it is (28
 * bytes; user space reads the family first). */
static __always_inline void put_sockaddr(struct gen_rec *r, __u32 s, const void *p)
{
	char *dst = &r->data[(s & 1) * STR_LEN];

	if (bpf_probe_read_kernel(dst, sizeof(struct sockaddr_in6), p) &&
	    bpf_probe_read_user(dst, sizeof(struct sockaddr_in6), p)) {
		r->str_len[s & 1] = 0;
		return;
	}
	r->str_len[s & 1] = sizeof(struct sockaddr_in6);
}

/* in_compat_syscall says whether task t is in a 32-bit system call. */
static __always_inline bool in_compat_syscall(struct task_struct *t)
{
	if (!bpf_core_field_exists(t->thread_info.status))
		return false;
	return BPF_CORE_READ(t, thread_info.status) & TS_COMPAT;
}

/* resolve follows argument slot i's resolve path from v. A NULL pointer
 * on the way ends it with 0 (reads at small addresses fail). */
static __always_inline __u64 resolve(__u64 v, int i)
{
	if (i < 0 || i >= MAX_ARGS)
		return v;
	for (int s = 0; s < MAX_RESOLVE; s++) {
		void *p;
		__u64 x = 0;

		if (s >= cfg.res_steps[i])
			break;
		p = (void *)(v + cfg.res_off[i][s]);
		switch (cfg.res_load[i][s]) {
		case 0:
			x = (__u64)p;
			break;
		case 1:
			bpf_probe_read_kernel(&x, 1, p);
			break;
		case 2:
			bpf_probe_read_kernel(&x, 2, p);
			break;
		case 4:
			bpf_probe_read_kernel(&x, 4, p);
			break;
		default:
			bpf_probe_read_kernel(&x, 8, p);
		}
		v = x;
		if (!v)
			break;
	}
	return v;
}

/* Not inlined: its frame (the path walk's context among others) is then
 * not under the selector evaluation's, whose chain of bpf_loop callbacks
 * and functions must fit the 512-byte combined stack 6.1's verifier
 * checks. */
static __noinline void fill_args(struct gen_conf *c, struct gen_rec *r, struct raw_args *ra,
				 long ret, struct task_struct *t)
{
	for (int i = 0; i < MAX_ARGS; i++) {
		struct arg_conf *a = &c->args[i];
		struct vfsmount *mnt = NULL;
		struct dentry *dentry = NULL;
		struct file *f = NULL;
		__u64 v;

		if (i >= c->nargs)
			break;
		/* a data: entry reads from the current task, through its
		 * resolve path */
		v = a->reg == REG_TASK ? (__u64)t : ra->a[a->reg & 7];
		if (cfg.res_steps[i])
			v = resolve(v, i);
		r->ints[i] = 0;
		switch (a->src) {
		case SRC_REG:
			r->ints[i] = extend(v, i);
			break;
		case SRC_RET:
			r->ints[i] = ret;
			break;
		case SRC_REG_USTR:
			put_user_str(r, a->str, v);
			break;
		case SRC_REG_STR:
			put_str(r, a->str, (const void *)v);
			break;
		case SRC_REG_FILENAME:
			put_str(r, a->str, BPF_CORE_READ((struct filename *)v, name));
			break;
		case SRC_REG_FILE:
			r->ints[i] = extend(v, i);
			f = fd_file(t, r->ints[i]);
			break;
		case SRC_REG_KFILE:
			f = (struct file *)v;
			break;
		case SRC_REG_KPATH:
			mnt = BPF_CORE_READ((struct path *)v, mnt);
			dentry = BPF_CORE_READ((struct path *)v, dentry);
			break;
		case SRC_REG_DENTRY:
			dentry = (struct dentry *)v;
			break;
		case SRC_REG_NETDEV:
			put_str(r, a->str, __builtin_preserve_access_index(&((struct net_device *)v)->name));
			break;
		case SRC_REG_DNS:
			r->ints[i] = put_dns(r, a->str, (struct msghdr *)v);
			break;
		case SRC_REG_KIOCB:
			f = BPF_CORE_READ((struct kiocb *)v, ki_filp);
			break;
		case SRC_REG_USERNS:
			put_userns(r, a->str, (const struct user_namespace *)v);
			break;
		case SRC_REG_CRED:
			put_cred(r, a->str, (const struct cred *)v);
			break;
		case SRC_REG_BINPRM:
			f = BPF_CORE_READ((struct linux_binprm *)v, file);
			break;
		case SRC_REG_SOCK:
			/* the sock's address, for socket tracking (not reported) */
			r->ints[i] = v;
			put_sock(r, a->str, (struct sock *)v);
			break;
		case SRC_REG_SKB:
			r->ints[i] = (__u64)BPF_CORE_READ((struct sk_buff *)v, sk);
			put_skb(r, a->str, (struct sk_buff *)v);
			break;
		case SRC_REG_SOCKADDR:
			put_sockaddr(r, a->str, (const void *)v);
			break;
		case SRC_REG_IOVITER:
			/* read by fill_iov, once the loop is done */
			r->ints[i] = v;
			break;
		case SRC_REG_MODULE:
			put_module(r, a->str, (struct module *)v);
			break;
		case SRC_REG_I32ARR:
			/* at return for returnCopy: v is the pointer the entry
			 * probe saved, and the kernel has filled the array */
			put_user_i32arr(r, a->str, v);
			break;
		case SRC_REG_SOCKET:
			r->ints[i] = (__u64)BPF_CORE_READ((struct socket *)v, sk);
			put_sock(r, a->str, (struct sock *)r->ints[i]);
			break;
		case SRC_REG_BPF_ATTR:
			put_bpf_attr(r, a->str, (union bpf_attr *)v);
			break;
		case SRC_REG_BPF_MAP:
			put_bpf_map(r, a->str, (struct bpf_map *)v);
			break;
		case SRC_REG_PERF_EVENT:
			put_perf_event(r, a->str, (struct perf_event *)v);
			break;
		case SRC_REG_KCAP:
			if (bpf_probe_read_kernel(&r->ints[i], sizeof(__u64), (const void *)v))
				r->ints[i] = 0;
			break;
		case SRC_REG_SYSCALL64:
			r->ints[i] = v | (in_compat_syscall(t) ? SYSCALL64_32BIT : 0);
			break;
		}
		if (f) {
			mnt = BPF_CORE_READ(f, f_path.mnt);
			dentry = BPF_CORE_READ(f, f_path.dentry);
		}
		/* one walk per argument, whatever led to the dentry */
		if (dentry)
			put_path(r, a->str, t, mnt, dentry);
	}
}

/* fill_iov copies the data of the hook's iov_iter arguments, whose
 * pointers fill_args left in their ints: a copy in fill_args' loop would
 * be verified once per argument slot and path (8k instructions more). */
static __noinline void fill_iov(struct gen_conf *c, struct gen_rec *r)
{
	for (int i = 0; i < MAX_ARGS; i++) {
		if (i >= c->nargs)
			break;
		if (c->args[i].src != SRC_REG_IOVITER)
			continue;
		put_iov_iter(c->args[i].str, r->ints[i]);
		r->ints[i] = 0; /* a kernel address: not reported */
	}
}

/* owner returns the pid_tgid an event is attributed to: the process that
 * tracks the socket of the call's first sock, socket or skb argument
 * found in socktrack (TrackSock), else the current task. */
static __always_inline __u64 owner(struct gen_conf *c, struct gen_rec *r)
{
	for (int i = 0; i < MAX_ARGS; i++) {
		struct sock_owner *o;
		__u64 sk;
		__u8 src;

		if (i >= c->nargs)
			break;
		src = c->args[i].src;
		if (src != SRC_REG_SOCK && src != SRC_REG_SOCKET && src != SRC_REG_SKB)
			continue;
		sk = r->ints[i];
		o = sk ? bpf_map_lookup_elem(&socktrack, &sk) : NULL;
		if (o)
			return (__u64)o->pid << 32 | o->tid;
	}
	return bpf_get_current_pid_tgid();
}

static __always_inline void track(__u64 sk, bool on)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock_owner o = {.pid = id >> 32, .tid = (__u32)id};

	if (!sk)
		return;
	if (on)
		bpf_map_update_elem(&socktrack, &sk, &o, BPF_ANY);
	else
		bpf_map_delete_elem(&socktrack, &sk);
}

/* sock_actions carries out the socket tracking of a call selector s (or
 * MAX_SELECTORS: no selectors), whose actions are acts, matched:
 * returnArgAction on the returned sock, TrackSock and UntrackSock on the
 * sock argument argSock names. */
static __always_inline void sock_actions(struct gen_rec *r, __u32 s, __u32 acts, long ret)
{
	__u32 slot;

	if (cfg.ret_sock_action)
		track(ret, cfg.ret_sock_action == RET_SOCK_TRACK);
	if (s >= MAX_SELECTORS || !(acts & (ACT_TRACKSOCK | ACT_UNTRACKSOCK)))
		return;
	/* & 7: within cfg whatever the verifier knows of s */
	slot = cfg.sel_sock_slot[s & 7];
	if (slot < MAX_ARGS)
		track(r->ints[slot], acts & ACT_TRACKSOCK);
}

/* act_hook carries out what is left of the actions of the selector of
 * hook c that matched the call in r, once take_actions read them and
 * signalled: the stacks, the record, the socket tracking. sel_acts is the
 * selector (MAX_SELECTORS: the hook has none) and its actions << 8. ctx is
 * the program's context for a hook that may record stacks (in an object
 * of its own), else NULL, which the verifier knows (a static function is
 * verified with its caller's values). Not inlined: its frame is not under
 * the selectors' chain of callbacks, whose stack 6.1 adds up to at most
 * 512 bytes with the caller's. The selector is not used as an index here:
 * 6.1 loses the bound of an argument spilled across calls. */
static __noinline void act_hook(void *ctx, struct gen_conf *c, struct gen_rec *r, __u32 sel_acts, long ret)
{
	__u32 s = sel_acts & 0xff, acts = sel_acts >> 8;

	r->kstack = r->ustack = -1;
	if (ctx) {
		if (acts & ACT_KSTACK)
			r->kstack = bpf_get_stackid(ctx, &stacks, 0);
		if (acts & ACT_USTACK)
			r->ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	}
	if (acts & ACT_POST)
		post_rec(c, r, s, acts, owner(c, r), cfg.syscall_nr, ret);
	sock_actions(r, s, acts, ret);
}

/* evaluate_hook's *sel when the list's prefilter ruled the call out */
#define SEL_PASSED (-2)

/* evaluate_hook runs hook c's selectors on one call and carries out the
 * actions of the one that matched; it returns the value an Override
 * selector asks the function to return, else 0, and sets *sel to the
 * matched selector. same_args: the record has the call's arguments as
 * this hook reads them already. pre: the list's prefilter (struct call),
 * for its first hook, else 0. ctx: as act_hook's. */
static __always_inline long evaluate_hook(void *ctx, bool same_args, struct gen_conf *c, struct raw_args *ra, long ret,
					  int *sel, __u32 pre)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct gen_rec *r;
	__u32 zero = 0, acts;
	long err;
	int s;

	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	if (!same_args) {
		r->str_len[0] = r->str_len[1] = 0;
		r->str_flags[0] = r->str_flags[1] = 0;
		fill_args(c, r, ra, ret, t);
		fill_iov(c, r);
	}
	/* here, with the arguments read: one lookup in the union of every
	 * listed hook's values, then no hook runs when it finds none */
	if (prefilter_miss(pre)) {
		*sel = SEL_PASSED;
		return 0;
	}
	s = select(c, r, ret);
	*sel = s;
	if (s < 0)
		return 0;
	err = take_actions(c, s, &acts);
	act_hook(ctx, c, r, (__u32)s | acts << 8, ret);
	return err;
}

/* only_hook returns the configuration of the object's one hook, in an
 * object of its own (cfg.own). */
static __always_inline struct gen_conf *only_hook(void)
{
	struct point_list *l;
	__u32 zero = 0;

	l = bpf_map_lookup_elem(&hooks, &zero);
	if (!l || l->n < 1)
		return NULL;
	return bpf_map_lookup_elem(&conf, &l->slot[0]);
}

/* run_hook runs the hook in slot of a shared object on one call (with
 * SLOT_SAME_ARGS, on the arguments the hook before it read) and returns
 * what Override asks the function to return, else 0. The call is in
 * call_heap. Global, so that the verifier checks it once, not once per
 * hook the loop in evaluate may reach. */
__noinline int run_hook(__u32 slot)
{
	bool same = slot & SLOT_SAME_ARGS;
	struct gen_conf *c;
	struct call *cl;
	__u32 zero = 0, pre;
	long err;
	int s;

	slot &= ~SLOT_SAME_ARGS;
	cl = bpf_map_lookup_elem(&call_heap, &zero);
	c = bpf_map_lookup_elem(&conf, &slot);
	if (!cl || !c)
		return 0;
	/* the first hook's alone */
	pre = cl->pre;
	cl->pre = 0;
	err = evaluate_hook(NULL, same, c, &cl->ra, cl->ret, &s, pre);
	if (s == SEL_PASSED)
		cl->passed = 1;
	return err;
}

/* run_own runs the hook of an object of its own (cfg.own). Not inlined:
 * the programs' own frames stay small. */
static __noinline long run_own(void *ctx, struct raw_args *ra, long ret, int *sel)
{
	struct gen_conf *c = only_hook();

	if (!c)
		return 0;
	/* here, not in evaluate_hook: in a shared object the object counts
	 * the calls once (PS_CALLS), and a counter per hook per call would
	 * grow each call's cost with the hooks */
	stat_inc(c->slot * GS_MAX + GS_CALLS);
	return evaluate_hook(ctx, false, c, ra, ret, sel, 0);
}

/* run_slot runs hook i of the call's list, under bpf_loop: a callback
 * this small is cheap to verify, whatever the list's length. */
static long run_slot(__u32 i, void *data)
{
	struct point_list **l = data;
	struct call *cl;
	__u32 zero = 0;
	long err;

	if (i >= POINT_SLOTS)
		return 1;
	err = run_hook((*l)->slot[i]);
	cl = bpf_map_lookup_elem(&call_heap, &zero);
	if (!cl)
		return 1;
	/* the first hook that overrides decides the return value */
	if (err && !cl->err)
		cl->err = err;
	/* the prefilter ruled every hook out */
	return cl->passed ? 1 : 0;
}

/* evaluate runs the object's hooks on one call, in list order; it returns
 * the value the first Override asks the function to return, else 0, and
 * sets *sel (sel not NULL) to the matched selector of a hook in an object
 * of its own (else -1). */
static __always_inline long evaluate(void *ctx, struct raw_args *ra, long ret, int *sel)
{
	struct point_list *l;
	struct call *cl;
	__u32 zero = 0;
	long err;
	int s = -1;

	if (sel)
		*sel = -1;
	if (cfg.own) {
		err = run_own(ctx, ra, ret, &s);
		if (sel)
			*sel = s;
		return err;
	}
	l = bpf_map_lookup_elem(&hooks, &zero);
	cl = bpf_map_lookup_elem(&call_heap, &zero);
	if (!l || !cl)
		return 0;
	cl->ret = ret;
	cl->err = 0;
	cl->pre = l->pre;
	cl->passed = 0;
	point_stat(PS_CALLS);
	/* the list as it is now, whole: user space replaces it, never
	 * changes it in place */
	bpf_loop(l->n, run_slot, &l, 0);
	if (cl->passed)
		point_stat(PS_PASSED);
	return cl->err;
}

/* evaluate_entry serves an override_at_return hook at entry: the
 * selectors and their actions, as evaluate, but the matched selector is
 * saved for report_return instead of posted. It returns the Override's
 * value, else 0. */
static __noinline long evaluate_entry(struct raw_args *ra)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct verdict v = {};
	struct gen_conf *c;
	struct gen_rec *r;
	__u32 zero = 0;
	long err;
	int s;

	c = only_hook();
	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!c || !r)
		return 0;
	stat_inc(c->slot * GS_MAX + GS_CALLS);
	r->str_len[0] = r->str_len[1] = 0;
	r->str_flags[0] = r->str_flags[1] = 0;
	fill_args(c, r, ra, 0, t);
	fill_iov(c, r);
	s = select(c, r, 0);
	if (s < 0)
		return 0;
	err = take_actions(c, s, &v.acts);
	v.sel = s;
	bpf_map_update_elem(&verdicts, &id, &v, BPF_ANY);
	return err;
}

/* report_return serves an override_at_return hook at return: a call
 * whose selector matched at entry is posted with that selector, its
 * arguments read again and ret, the value the caller gets. The actions
 * were taken at entry. */
static __noinline void report_return(void *ctx, struct raw_args *ra, long ret)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct verdict *v;
	struct gen_conf *c;
	struct gen_rec *r;
	__u32 zero = 0, acts;
	int s;

	v = bpf_map_lookup_elem(&verdicts, &id);
	if (!v)
		return;
	s = v->sel;
	acts = v->acts;
	bpf_map_delete_elem(&verdicts, &id);
	c = only_hook();
	r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!c || !r)
		return;
	r->str_len[0] = r->str_len[1] = 0;
	r->str_flags[0] = r->str_flags[1] = 0;
	fill_args(c, r, ra, ret, t);
	fill_iov(c, r);
	r->kstack = r->ustack = -1;
	if (acts & ACT_KSTACK)
		r->kstack = bpf_get_stackid(ctx, &stacks, 0);
	if (acts & ACT_USTACK)
		r->ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	if (acts & ACT_POST)
		post_rec(c, r, s, acts, owner(c, r), cfg.syscall_nr, ret);
}

/* syscall_args replaces a syscall entry point's one parameter, the user
 * registers the syscall took, with the syscall's arguments. */
static __always_inline void syscall_args(struct raw_args *ra)
{
	struct pt_regs *regs = (struct pt_regs *)ra->a[0];

	if (cfg.nparams > 0)
		ra->a[0] = BPF_CORE_READ(regs, di);
	if (cfg.nparams > 1)
		ra->a[1] = BPF_CORE_READ(regs, si);
	if (cfg.nparams > 2)
		ra->a[2] = BPF_CORE_READ(regs, dx);
	if (cfg.nparams > 3)
		ra->a[3] = BPF_CORE_READ(regs, r10);
	if (cfg.nparams > 4)
		ra->a[4] = BPF_CORE_READ(regs, r8);
	if (cfg.nparams > 5)
		ra->a[5] = BPF_CORE_READ(regs, r9);
}

/* load_args reads the parameters at function entry. */
static __always_inline void load_args(struct pt_regs *ctx, struct raw_args *ra)
{
	if (cfg.usdt.on) {
		for (int i = 0; i < USDT_PARAMS; i++) {
			if (i >= cfg.nparams)
				break;
			ra->a[i] = usdt_read(&cfg.usdt, ctx, i);
		}
		return;
	}
	ra->a[0] = ctx->di;
	ra->a[1] = ctx->si;
	ra->a[2] = ctx->dx;
	ra->a[3] = ctx->cx;
	ra->a[4] = ctx->r8;
	ra->a[5] = ctx->r9;
	if (cfg.syscall_wrapper)
		syscall_args(ra);
}

SEC("kprobe")
int gen_kprobe(struct pt_regs *ctx)
{
	struct raw_args *ra = new_args();
	int s = -1;
	long err;

	if (!ra)
		return 0;
	load_args(ctx, ra);
	if (cfg.at_return) {
		__u64 id = bpf_get_current_pid_tgid();

		bpf_map_update_elem(&entries, &id, ra, BPF_ANY);
		return 0;
	}
	err = evaluate(ctx, ra, 0, &s);
	/* the uprobe actions that write registers (Set, Regs, Override): err
	 * is not zero only for an Override selector. Here, not in evaluate:
	 * code added there changed clang's register allocation for every
	 * program, and 6.1's verifier then lost a selector index's bound in
	 * the fmod_ret program */
	if (cfg.usdt.ctx_writes)
		write_regs(&cfg.usdt, ctx, s, err);
	return 0;
}

SEC("kretprobe")
int gen_kretprobe(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct raw_args *ra, *saved;

	saved = bpf_map_lookup_elem(&entries, &id);
	ra = new_args();
	if (!saved || !ra)
		return 0;
	*ra = *saved;
	bpf_map_delete_elem(&entries, &id);
	evaluate(ctx, ra, ctx->ax, NULL);
	return 0;
}

/* func_args reads the parameters of a function an fentry, fexit or
 * fmod_ret program is attached to. */
static __always_inline void func_args(__u64 *ctx, struct raw_args *ra)
{
	/* bpf_get_func_arg bounds the index by the function's arity at run
	 * time; ctx[i] would need a constant i the verifier can check */
	for (int i = 0; i < 6; i++) {
		if (i >= cfg.nparams)
			break;
		bpf_get_func_arg(ctx, i, &ra->a[i]);
	}
	if (cfg.syscall_wrapper)
		syscall_args(ra);
}

/* gen_fmod_ret serves hooks with an Override selector on functions that
 * allow their return value to be modified (security_* hooks, and functions
 * marked for error injection): a non-zero return skips the function. */
SEC("fmod_ret")
int gen_fmod_ret(__u64 *ctx)
{
	struct raw_args *ra = new_args();

	if (!ra)
		return 0;

	func_args(ctx, ra);
	if (cfg.override_at_return)
		return evaluate_entry(ra);
	return evaluate(ctx, ra, 0, NULL);
}

/* gen_fentry serves spec.fentries: the kprobe spec, run by a BPF
 * trampoline at the function's entry instead of a kprobe. */
SEC("fentry")
int gen_fentry(__u64 *ctx)
{
	struct raw_args *ra = new_args();

	if (!ra)
		return 0;

	func_args(ctx, ra);
	evaluate(ctx, ra, 0, NULL);
	return 0;
}

/* gen_fexit serves spec.fentries with return: true: at return the
 * trampoline still has the parameters, so nothing is saved at entry. It
 * also reports the calls of an override_at_return hook, with the value
 * the fmod_ret program made the function return. */
SEC("fexit")
int gen_fexit(__u64 *ctx)
{
	struct raw_args *ra = new_args();
	__u64 ret = 0;

	if (!ra)
		return 0;
	func_args(ctx, ra);
	bpf_get_func_ret(ctx, &ret);
	if (cfg.override_at_return)
		report_return(ctx, ra, ret);
	else
		evaluate(ctx, ra, ret, NULL);
	return 0;
}

/* gen_lsm serves lsmhooks: BPF LSM programs run where the kernel consults
 * its security modules, so a non-zero return (Override) denies the
 * operation. */
SEC("lsm")
int gen_lsm(__u64 *ctx)
{
	struct raw_args *ra = new_args();
	long err;

	if (!ra)
		return 0;
	for (int i = 0; i < 6; i++) {
		if (i >= cfg.nparams)
			break;
		bpf_get_func_arg(ctx, i, &ra->a[i]);
	}
	err = evaluate(ctx, ra, 0, NULL);
	/* the kernel accepts only 0 or a negative errno from LSM programs */
	if (err > 0 || err < -4095)
		err = -1;
	return err;
}

/* tp_field reads format field slot i of a tracepoint record. */
static __always_inline __u64 tp_field(void *ctx, int i)
{
	__u64 v = 0;
	__u32 loc = 0;
	void *p;

	if (i >= TP_FIELDS)
		return 0;
	p = ctx + cfg.tp_off[i];
	switch (cfg.tp_read[i]) {
	case TP_ADDR:
		return (__u64)p;
	case TP_DATA_LOC:
		/* low 16 bits: offset from the record's start; high: length */
		bpf_probe_read_kernel(&loc, sizeof(loc), p);
		return (__u64)(ctx + (loc & 0xffff));
	}
	/* constant sizes: the helper's size must be known to the verifier */
	switch (cfg.tp_size[i]) {
	case 1:
		bpf_probe_read_kernel(&v, 1, p);
		break;
	case 2:
		bpf_probe_read_kernel(&v, 2, p);
		break;
	case 4:
		bpf_probe_read_kernel(&v, 4, p);
		break;
	default:
		bpf_probe_read_kernel(&v, 8, p);
	}
	return v;
}

/* gen_tracepoint serves tracepoints: hooks on a perf tracepoint, whose
 * context is the event's record as its format file describes it. */
SEC("tracepoint")
int gen_tracepoint(void *ctx)
{
	struct raw_args *ra = new_args();

	if (!ra)
		return 0;

	for (int i = 0; i < 6; i++) {
		if (i >= cfg.nparams)
			break;
		ra->a[i] = tp_field(ctx, i);
	}
	evaluate(ctx, ra, 0, NULL);
	return 0;
}

/* gen_raw_tp serves tracepoints: with raw: true, whose parameters are the
 * tracepoint's TP_PROTO arguments. The context allows constant offsets
 * only, hence no loop. */
SEC("raw_tracepoint")
int gen_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	struct raw_args *ra = new_args();

	if (!ra)
		return 0;

	if (cfg.nparams > 0)
		ra->a[0] = ctx->args[0];
	if (cfg.nparams > 1)
		ra->a[1] = ctx->args[1];
	if (cfg.nparams > 2)
		ra->a[2] = ctx->args[2];
	if (cfg.nparams > 3)
		ra->a[3] = ctx->args[3];
	if (cfg.nparams > 4)
		ra->a[4] = ctx->args[4];
	if (cfg.nparams > 5)
		ra->a[5] = ctx->args[5];
	evaluate(ctx, ra, 0, NULL);
	return 0;
}
