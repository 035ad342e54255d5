//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The loader sensor (a policy's spec.loader: true): one record for each
 * ELF file with a build id that a process maps.
 *
 * The kernel describes a new mapping (its file's path, as the mapping
 * process sees it, and the build id of an ELF file) only to perf events
 * that ask for mmap records, and it builds that description only while
 * such an event exists. User space (pkg/sensor/loader.go) opens one
 * software perf event per CPU asking for mmap, mmap2, data mappings and
 * build ids, and writes each one's id into perf_ids; this kprobe on the
 * function that hands the description to each listening event picks out
 * our events' calls. The perf events' own records would carry the pid as
 * the agent's pid namespace sees it (zero for processes outside it), so
 * the process is taken from the current task instead. */
#include "lib/common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum loader_stat {
	LOADER_STAT_RECORDS = 0,
	LOADER_STAT_DROPS = 1,
	LOADER_STAT_MAX = 4,
};

DEFINE_STATS(LOADER_STAT_MAX)

#define LOADER_PATH_MAX 4096
#define BUILD_ID_MAX 20

struct loader_rec {
	struct rec_header hdr;
	__u32 pid;
	__u32 tid;
	__u32 build_id_size;
	/* bytes of path, without its NUL; the record ends with them */
	__u32 path_len;
	__u8 build_id[BUILD_ID_MAX];
	char path[LOADER_PATH_MAX];
};

/* For each CPU, the id of the agent's perf event on that CPU: the kernel
 * keeps side-band events per CPU and calls the output function of the
 * current CPU's. Its size is set from user space to the possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} perf_ids SEC(".maps");

/* the record is too large for the stack */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loader_rec);
} loader_heap SEC(".maps");

SEC("kprobe/perf_event_mmap_output")
int BPF_KPROBE(loader_mmap, struct perf_event *event, struct perf_mmap_event *mmap)
{
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	__u64 *id = bpf_map_lookup_elem(&perf_ids, &cpu);
	if (!id || !*id || BPF_CORE_READ(event, id) != *id)
		return 0;
	/* as Tetragon: only files with a build id (ELF files, read when the
	 * kernel has their first page at hand); this also leaves out
	 * anonymous mappings and files that are not programs */
	__u32 bsize = BPF_CORE_READ(mmap, build_id_size);
	if (!bsize)
		return 0;
	struct loader_rec *r = bpf_map_lookup_elem(&loader_heap, &zero);
	if (!r)
		return 0;
	r->build_id_size = bsize < BUILD_ID_MAX ? bsize : BUILD_ID_MAX;
	bpf_core_read(r->build_id, sizeof(r->build_id), &mmap->build_id);
	const char *name = BPF_CORE_READ(mmap, file_name);
	long n = bpf_probe_read_kernel_str(r->path, sizeof(r->path), name);
	if (n <= 1)
		return 0;
	r->path_len = (__u32)(n - 1) & (LOADER_PATH_MAX - 1);
	__u64 pt = bpf_get_current_pid_tgid();
	r->pid = pt >> 32;
	r->tid = (__u32)pt;
	__u32 size = offsetof(struct loader_rec, path) + r->path_len;
	if (size > sizeof(*r))
		return 0;
	rec_init(&r->hdr, OP_LOADER, size);
	if (bpf_ringbuf_output(&events, r, size, 0))
		stat_inc(LOADER_STAT_DROPS);
	else
		stat_inc(LOADER_STAT_RECORDS);
	return 0;
}

/* for bpf2go's -type */
const struct loader_rec *unused_loader_rec __attribute__((unused));
