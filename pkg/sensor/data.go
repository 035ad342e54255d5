package sensor

import "github.com/tetragon-lite/tetragon/bpf"

// RegTask is the Arg.Reg of a kprobe's data: entry with source
// current_task: bpf/hook.c starts its resolve path at the current
// task_struct instead of a parameter.
const RegTask = uint8(bpf.HookHookLimitHL_REG_TASK)
