package tracingpolicy

// TypeInt32Arr is an int32_arr: a pointer to int32s in the caller's
// memory (pipe2's and socketpair's fds), Size of them, reported as
// Tetragon's int32_list_arg. With returnCopy they are read when the call
// returns, after the kernel filled them. Not matched: Tetragon has no
// operator for it.
const TypeInt32Arr ArgType = "int32_arr"

// MaxInt32ArrSize is the most elements an int32_arr reads (the kernel's
// MAX_I32ARR, bpf/lib/hook.h: a quarter of a string slot).
const MaxInt32ArrSize = 64
