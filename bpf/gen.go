// Package bpf holds the agent's BPF programs, compiled by bpf2go into Go
// bindings that are committed, so building the agent never needs clang.
// scripts/generate.sh regenerates them; CI fails when they drift.
package bpf

//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -I. -I/usr/include/x86_64-linux-gnu" -tags linux -target amd64 -type exec_rec -type exit_rec -type fork_rec -type rec_header Process process.c
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -I. -I/usr/include/x86_64-linux-gnu" -tags linux -target amd64 -type sys_list -type sys_head -type sys_head_flag -type sys_pair -type sys_flag -type var_fd -type dispatch_limit -type list_stat -type chain_slot -type attached_set Dispatch dispatch.c
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -I. -I/usr/include/x86_64-linux-gnu" -tags linux -target amd64 -type gen_rec -type gen_conf -type lpm_key -type cgroup_key -type arg_src -type arg_type -type match_op -type match_kind -type match_flag -type ns_kind -type cap_set -type refresh_flag -type act_flag -type gen_stat -type hook_limit -type point_list -type point_limit -type point_stat Hook hook.c
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -I. -I/usr/include/x86_64-linux-gnu" -tags linux -target amd64 -type loader_rec Loader loader.c
