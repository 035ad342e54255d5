package sensor

import "github.com/tetragon-lite/tetragon/bpf"

// SrcRegI32Arr reads an int32_arr argument: Arg.Count int32s at the user
// pointer in argument Reg, copied into the argument's string slot. Both
// the syscall-tracepoint dispatcher and the kprobe object read it; with
// returnCopy the hook runs at the call's return, after the kernel filled
// the array.
const SrcRegI32Arr = ArgSource(bpf.HookArgSrcSRC_REG_I32ARR)

// MaxInt32Arr is the most elements an int32_arr argument reads.
const MaxInt32Arr = int(bpf.HookHookLimitHL_MAX_I32ARR)
