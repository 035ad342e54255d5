package tracingpolicy

// TypeIovIter is a struct iov_iter * of a kernel function (tty_write's):
// the bytes it describes, reported as Tetragon's bytes_arg. The first
// segment is read, up to MaxData bytes. Not matched: Tetragon documents
// no operator for it.
const TypeIovIter ArgType = "iov_iter"

// MaxData is the most bytes a char_buf or iov_iter argument reports, with
// or without maxData: one string slot of the record (bpf/lib/hook.h
// STR_LEN). Tetragon reads 4096 by default and up to 327360 with maxData,
// sending the rest in separate data events, which this agent does not
// build: maxData is accepted and the data cut at this limit, flagged
// truncated.
const MaxData = 4096

// takesMaxData reports whether maxData applies to type t.
func takesMaxData(t ArgType) bool { return t == TypeCharBuf || t == TypeIovIter }
