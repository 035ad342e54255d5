package sensor

import "github.com/tetragon-lite/tetragon/bpf"

// SrcRegIovIter reads a struct iov_iter * (tty_write's, the write paths'):
// the bytes of its first segment, at most a string slot of them, flagged
// truncated when the iterator holds more. Kernel functions only (hook.c).
const SrcRegIovIter = ArgSource(bpf.HookArgSrcSRC_REG_IOVITER)

// MaxIovIterData is the most bytes an iov_iter argument reports: one
// string slot of the record.
const MaxIovIterData = int(bpf.HookHookLimitHL_STR_LEN)
