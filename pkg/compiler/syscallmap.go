package compiler

import (
	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// Kernel access masks (MAY_* in include/linux/fs.h).
const (
	mayWrite = 2
	mayRead  = 4
)

// x86_64 syscall numbers the mapping uses.
const (
	sysRead           = 0
	sysWrite          = 1
	sysOpen           = 2
	sysMmap           = 9
	sysPread64        = 17
	sysPwrite64       = 18
	sysReadv          = 19
	sysWritev         = 20
	sysSendfile       = 40
	sysTruncate       = 76
	sysFtruncate      = 77
	sysCreat          = 85
	sysOpenat         = 257
	sysSplice         = 275
	sysPreadv         = 295
	sysPwritev        = 296
	sysOpenByHandleAt = 304
	sysCopyFileRange  = 326
	sysPreadv2        = 327
	sysPwritev2       = 328
	sysOpenat2        = 437
)

// funcMapping serves a kernel function through syscall tracepoints: the
// syscalls whose work passes through the function, and where each of the
// function's arguments comes from.
type funcMapping struct {
	syscalls map[uint32]sensor.Syscall
	// args[i] is the source of the function's argument i
	args []sensor.Arg
	// when describes, for the docs and the log, where the call is seen
	when string
	// For return probes (return: true), served at the syscall's exit:
	// refusals are the syscalls whose EACCES or EPERM can only be the
	// function's own refusal (see returnTable); void says the function
	// returns nothing; failures says, for errors, why a failed syscall
	// gives no return value.
	refusals map[uint32]bool
	void     bool
	failures string
}

// Errors an LSM refusal gives (errno).
const (
	errEPERM  = 1
	errEACCES = 13
)

// returnTable is the syscall table of a return probe on the function: every
// syscall is seen at its exit, where the function's return value is derived
// from the syscall's (FuncRet in bpf/dispatch.c): a syscall that succeeded
// got past the function, which returned 0; a failed one gives a record only
// where refusals says its EACCES or EPERM was the function's.
func (m funcMapping) returnTable() map[uint32]sensor.Syscall {
	out := make(map[uint32]sensor.Syscall, len(m.syscalls))
	for nr, sc := range m.syscalls {
		flags := sc.Flags&^sensor.OnEnter | sensor.OnExit | sensor.FuncRet
		if m.refusals[nr] {
			flags |= sensor.Refusals
		}
		out[nr] = sensor.Syscall{Flags: flags, Variants: sc.Variants}
	}
	return out
}

// returnValues lists the return values the mapping reports for the
// function: 0, and the refusals' errors where there are any.
func (m funcMapping) returnValues() []int64 {
	if len(m.refusals) > 0 {
		return []int64{0, -errEACCES, -errEPERM}
	}
	return []int64{0}
}

func variant(fd, mask uint8) []sensor.Variant { return []sensor.Variant{{FD: fd, Mask: mask}} }

func openFamily() map[uint32]sensor.Syscall {
	m := map[uint32]sensor.Syscall{}
	for _, nr := range []uint32{sysOpen, sysOpenat, sysOpenat2, sysCreat, sysOpenByHandleAt} {
		m[nr] = sensor.Syscall{Flags: sensor.OnExit | sensor.RetOK, Variants: variant(sensor.VarFDRet, 0)}
	}
	return m
}

// oneFileReadWrite are the read and write syscalls that act on one file.
// Before security_file_permission they fail only with EBADF, EINVAL,
// EFAULT, EOVERFLOW or ESPIPE (vfs_read, vfs_write, rw_verify_area), so an
// EACCES or EPERM is the check's refusal, or the file's own read or write
// operation refusing after it (docs/mechanisms.md).
var oneFileReadWrite = []uint32{sysRead, sysPread64, sysReadv, sysPreadv, sysPreadv2,
	sysWrite, sysPwrite64, sysWritev, sysPwritev, sysPwritev2}

func readWriteFamily() map[uint32]sensor.Syscall {
	m := map[uint32]sensor.Syscall{}
	for _, nr := range []uint32{sysRead, sysPread64, sysReadv, sysPreadv, sysPreadv2} {
		m[nr] = sensor.Syscall{Flags: sensor.OnEnter, Variants: variant(0, mayRead)}
	}
	for _, nr := range []uint32{sysWrite, sysPwrite64, sysWritev, sysPwritev, sysPwritev2} {
		m[nr] = sensor.Syscall{Flags: sensor.OnEnter, Variants: variant(0, mayWrite)}
	}
	// two files: the source is read, the destination written
	m[sysSendfile] = sensor.Syscall{Flags: sensor.OnEnter, Variants: []sensor.Variant{{FD: 1, Mask: mayRead}, {FD: 0, Mask: mayWrite}}}
	m[sysCopyFileRange] = sensor.Syscall{Flags: sensor.OnEnter, Variants: []sensor.Variant{{FD: 0, Mask: mayRead}, {FD: 2, Mask: mayWrite}}}
	m[sysSplice] = sensor.Syscall{Flags: sensor.OnEnter, Variants: []sensor.Variant{{FD: 0, Mask: mayRead}, {FD: 2, Mask: mayWrite}}}
	return m
}

// syscallMapping returns how a kernel function is served through syscall
// tracepoints, and false when its meaning does not map onto syscalls.
func syscallMapping(fn string) (funcMapping, bool) {
	file := sensor.Arg{Kind: sensor.KindPath}
	const openFailures = "a failed open leaves no file descriptor, so the mapping has no file to report, and its EACCES or EPERM may come from the permission checks of the path walk, before the function"
	switch fn {
	case "fd_install":
		return funcMapping{
			syscalls: openFamily(),
			args: []sensor.Arg{
				{Source: sensor.SrcRet, Kind: sensor.KindInt},
				{Source: sensor.SrcRetFile, Kind: sensor.KindPath},
			},
			when:     "on return from open, openat, openat2, creat and open_by_handle_at",
			void:     true,
			failures: "fd_install runs only for an open that succeeded",
		}, true
	case "security_file_open":
		file.Source = sensor.SrcRetFile
		return funcMapping{syscalls: openFamily(), args: []sensor.Arg{file},
			when: "on return from the open family", failures: openFailures}, true
	case "security_file_permission":
		file.Source = sensor.SrcVarFile
		return funcMapping{
			syscalls: readWriteFamily(),
			args:     []sensor.Arg{file, {Source: sensor.SrcVarMask, Kind: sensor.KindInt}},
			when:     "on entry to the read and write families, sendfile, copy_file_range and splice",
			refusals: setOf(oneFileReadWrite),
			failures: "a failed sendfile, copy_file_range or splice does not say which of its two files was refused, and an error other than EACCES or EPERM may come from a step before the check (which then did not run) or after it (which then returned 0)",
		}, true
	case "security_mmap_file":
		file.Source = sensor.SrcVarFile
		return funcMapping{
			syscalls: map[uint32]sensor.Syscall{sysMmap: {Flags: sensor.OnEnter | sensor.NeedFile, Variants: variant(4, 0)}},
			args: []sensor.Arg{file,
				{Source: sensor.SrcReg, Reg: 2, Kind: sensor.KindInt},
				{Source: sensor.SrcReg, Reg: 3, Kind: sensor.KindInt}},
			when:     "on entry to mmap of a file",
			failures: "mmap itself refuses with EACCES or EPERM after the check (a file not open for writing mapped shared and writable, a noexec mount), and other errors may come from before the check",
		}, true
	case "security_path_truncate", "security_file_truncate":
		file.Source = sensor.SrcVarPath
		return funcMapping{
			syscalls: map[uint32]sensor.Syscall{
				sysTruncate:  {Flags: sensor.OnEnter, Variants: variant(sensor.VarNoFD, mayWrite)},
				sysFtruncate: {Flags: sensor.OnEnter, Variants: variant(0, mayWrite)},
			},
			args:     []sensor.Arg{file},
			when:     "on entry to truncate and ftruncate",
			failures: "truncate and ftruncate refuse with EACCES or EPERM before the check too (file permissions, append-only files)",
		}, true
	}
	return funcMapping{}, false
}

func setOf(nrs []uint32) map[uint32]bool {
	m := make(map[uint32]bool, len(nrs))
	for _, nr := range nrs {
		m[nr] = true
	}
	return m
}
