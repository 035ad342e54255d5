package compiler

import (
	"fmt"
	"os"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// compileKprobe compiles a kprobes: hook for the kprobe mechanism: a kprobe
// on the function itself (a kretprobe too for return: true), or an fmod_ret
// program when a selector overrides the return value. Syscall hooks attach
// to the arch entry point (__x64_sys_openat) and read the syscall's
// arguments from the user registers it takes. Declared argument types are
// checked against the function's BTF prototype, since a kprobe reads
// whatever the register holds.
func compileKprobe(d Decl, id uint32, k tracingpolicy.Kernel, features map[string]bool) (sensor.ProgHookSpec, hookInfo, error) {
	// returnCopy reads an argument at return: the entry probe saves the
	// parameters, the return probe reads and posts (the event reports a
	// return value for return: true only)
	spec := sensor.ProgHookSpec{ID: id, Return: d.Return || returnCopies(d)}
	info := newInfo(d, MechKprobe)
	if d.Fentry {
		// the same parameters and selectors, from an fentry program (fexit
		// for return: true, which sees both the parameters and the return
		// value)
		spec.Attach, info.event.Mechanism = sensor.AttachFentry, MechFentry
		if spec.Return {
			info.event.Mechanism = MechFexit
		}
	}
	name := tracingpolicy.SyscallName(d.Call)
	nr, isSyscall := syscallNumbers()[name]
	var source argSource
	if isSyscall {
		spec.Symbol, spec.Syscall, spec.SyscallNr = tracingpolicy.SyscallSymbol(name), true, nr
		if _, err := k.Func(spec.Symbol); err != nil {
			return spec, info, fmt.Errorf("%s: system call %s: %w", d.Call, name, err)
		}
		source = registerSource("a system call")
	} else {
		proto, err := k.Func(d.Call)
		if err != nil {
			return spec, info, fmt.Errorf("%s: %w", d.Call, err)
		}
		spec.Symbol = d.Call
		source = protoSource(proto)
	}
	slot, err := compileArgs(d, &spec, &info, source)
	if err != nil {
		return spec, info, err
	}
	if err := compileData(d, &spec, &info, k); err != nil {
		return spec, info, err
	}

	var overrideErr error
	if hasOverride(d) {
		switch {
		case !features[kernelfeatures.FmodRet]:
			// bpf_override_return would serve it too, but Debian's kernels
			// lack it (CONFIG_BPF_KPROBE_OVERRIDE), so it is not implemented
			overrideErr = fmt.Errorf("action Override needs fmod_ret, which this kernel lacks (probe feature %s)", kernelfeatures.FmodRet)
		case spec.Return && hasMatchReturnArgs(d):
			overrideErr = fmt.Errorf("action Override is decided when the function is entered, before its return value exists: matchReturnArgs cannot select it")
		case spec.Return && !features[kernelfeatures.Fexit]:
			// the value is reported by an fexit program, which the BPF
			// trampoline runs after fmod_ret whether or not the function
			// ran (a kretprobe's behaviour then was not measured)
			overrideErr = fmt.Errorf("action Override with return: true reports the return value from an fexit program, which this kernel lacks (probe feature %s)", kernelfeatures.Fexit)
		default:
			// with return: true, the fmod_ret program evaluates the
			// selectors at entry and an fexit program reports the calls
			// they matched with the value the caller got
			spec.Override, info.event.Mechanism = true, MechFmodRet
		}
	}
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot, overrideErr)
	switch d.ReturnArgAction {
	case tracingpolicy.ReturnArgTrackSock:
		spec.RetSockAction = sensor.RetTrackSock
	case tracingpolicy.ReturnArgUntrackSock:
		spec.RetSockAction = sensor.RetUntrackSock
	}
	if spec.RetSockAction != 0 && spec.Override {
		return spec, info, fmt.Errorf("%s: returnArgAction %s needs the return probe, which Override's fmod_ret program replaces", d.Call, d.ReturnArgAction)
	}
	return spec, info, err
}

// compileLSM compiles an lsmhooks: hook: a BPF LSM program on the hook,
// whose parameters are those of the bpf_lsm_<hook> stub's BTF prototype.
// Override returns its error from the hook, which denies the operation.
func compileLSM(d Decl, id uint32, k tracingpolicy.Kernel) (sensor.ProgHookSpec, hookInfo, error) {
	spec := sensor.ProgHookSpec{ID: id, Attach: sensor.AttachLSM, Symbol: d.Call}
	info := newInfo(d, MechLSM)
	proto, err := k.Func("bpf_lsm_" + d.Call)
	if err != nil {
		return spec, info, fmt.Errorf("LSM hook %s: %w", d.Call, err)
	}
	slot, err := compileArgs(d, &spec, &info, protoSource(proto))
	if err != nil {
		return spec, info, err
	}
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot, nil)
	return spec, info, err
}

// compileUprobe compiles a uprobes: hook on one symbol (or file offset):
// its arguments are read from the registers the x86_64 C calling convention
// passes them in, and strings from the process's memory.
func compileUprobe(d Decl, id uint32) (sensor.ProgHookSpec, hookInfo, error) {
	spec := sensor.ProgHookSpec{ID: id, Attach: sensor.AttachUprobe, Symbol: d.Call, Path: hostPath(d.Path), Offset: d.Offset, Return: d.Return || returnCopies(d)}
	info := newInfo(d, MechUprobe)
	slot, err := compileArgs(d, &spec, &info, registerSource("a user function"))
	if err != nil {
		return spec, info, err
	}
	// Override returns from the function at once (bpf/lib/usdt.h's
	// write_regs), which needs the uprobe at its first instruction
	var overrideErr error
	switch {
	case d.Offset != 0:
		overrideErr = fmt.Errorf("action Override returns from the function, which needs the uprobe at the function's first instruction (a symbol), not at a file offset")
	case d.Return:
		overrideErr = fmt.Errorf("action Override returns from the function before it runs, so the hook cannot also be a return probe")
	}
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot, overrideErr)
	if err != nil {
		return spec, info, err
	}
	for si, s := range d.Selectors {
		spec.Selectors[si].RegWrites = regWrites(s.MatchActions)
		if len(spec.Selectors[si].RegWrites) > 0 && d.Return {
			// bpf/hook.c writes registers from the entry probe only
			return spec, info, fmt.Errorf("%s: selectors[%d]: action Regs on a return probe is not built", d.Call, si)
		}
		if len(spec.Selectors[si].RegWrites) > sensor.MaxRegWrites {
			return spec, info, fmt.Errorf("%s: selectors[%d]: action Regs writes %d registers, at most %d", d.Call, si, len(spec.Selectors[si].RegWrites), sensor.MaxRegWrites)
		}
	}
	return spec, info, nil
}

// hostPath returns where the host's file path is seen from the agent. In
// the appliance the agent has a file system of its own but shares the
// host's pid namespace (--pid=host), so the host's root is pid 1's; a
// uprobe path in a policy names the host's binary, as it does for Tetragon
// on the host. Outside a container /proc/1/root is / and nothing changes.
func hostPath(path string) string {
	if st, err := os.Stat("/proc/1/root" + path); err == nil && !st.IsDir() {
		return "/proc/1/root" + path
	}
	return path
}

// argSource says how a hook's program reads one declared argument; it sets
// the argument's parameter slot (Reg).
type argSource func(spec *sensor.ProgHookSpec, a tracingpolicy.ArgSpec) (sensor.Arg, error)

// compileArgs compiles d's declared arguments into spec, in declaration
// order (their record slots), and returns the record slot of each declared
// index.
func compileArgs(d Decl, spec *sensor.ProgHookSpec, info *hookInfo, source argSource) (map[uint32]int, error) {
	slot := map[uint32]int{}
	declared := map[uint32]bool{}
	for _, a := range d.Args {
		if declared[a.Index] {
			return nil, fmt.Errorf("%s: argument index %d declared twice", d.Call, a.Index)
		}
		declared[a.Index] = true
		if isNop(a) {
			// declared, not read: no parameter slot, no record slot
			continue
		}
		arg, err := source(spec, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Call, err)
		}
		if a.Resolve != "" && len(arg.Resolve) == 0 {
			return nil, fmt.Errorf("%s: argument %d: resolve follows the parameter's BTF type, which only kernel functions, LSM hooks and raw tracepoints declare (not system call arguments, perf tracepoint fields or uprobes)", d.Call, a.Index)
		}
		spec.Params = max(spec.Params, int(arg.Reg)+1)
		slot[a.Index] = len(spec.Args)
		spec.Args = append(spec.Args, arg)
		info.event.Args = append(info.event.Args, a)
	}
	if len(spec.Args) > sensor.MaxArgs {
		return nil, fmt.Errorf("%s: %d arguments, at most %d", d.Call, len(spec.Args), sensor.MaxArgs)
	}
	return slot, nil
}

// protoSource reads the parameters of a kernel function (or LSM hook or raw
// tracepoint) as its BTF prototype declares them, refusing a declared type
// that does not fit.
func protoSource(proto tracingpolicy.FuncProto) argSource {
	return func(_ *sensor.ProgHookSpec, a tracingpolicy.ArgSpec) (sensor.Arg, error) {
		if int(a.Index) >= len(proto.Params) || a.Index >= sensor.MaxParams {
			return sensor.Arg{}, fmt.Errorf("argument index %d: the function has %d parameters (at most %d can be read)", a.Index, len(proto.Params), sensor.MaxParams)
		}
		param := proto.Params[a.Index]
		if a.Resolve != "" {
			return resolveSource(a, param)
		}
		if ok, need := tracingpolicy.ArgFits(a.Type, param.Type); !ok {
			return sensor.Arg{}, fmt.Errorf("argument %d: type %s does not fit parameter %d (%s): %s needs %s", a.Index, a.Type, a.Index, param.Type, a.Type, need)
		}
		return kernelSource(a)
	}
}

// kernelSource says how a kernel function's parameter is read as a's type.
func kernelSource(a tracingpolicy.ArgSpec) (sensor.Arg, error) {
	t := a.Type
	arg := sensor.Arg{Reg: uint8(a.Index), Kind: sensor.KindPath}
	switch {
	case a.Type.PlainInt(), t == tracingpolicy.TypeFd:
		return intSource(a), nil
	case t == tracingpolicy.TypeString:
		arg.Source = sensor.SrcRegStr
	case t == tracingpolicy.TypeFilename:
		arg.Source = sensor.SrcRegFilename
	case t == tracingpolicy.TypeFile:
		arg.Source = sensor.SrcRegKFile
	case t == tracingpolicy.TypePath:
		arg.Source = sensor.SrcRegKPath
	case t == tracingpolicy.TypeDentry:
		arg.Source = sensor.SrcRegDentry
	case t == tracingpolicy.TypeSock:
		arg.Source = sensor.SrcRegSock
	case t == tracingpolicy.TypeSkb:
		arg.Source = sensor.SrcRegSkb
	case t == tracingpolicy.TypeSockaddr:
		arg.Source = sensor.SrcRegSockaddr
	case t == tracingpolicy.TypeLinuxBinprm:
		arg.Source = sensor.SrcRegBinprm
	case t == tracingpolicy.TypeCred:
		arg.Source = sensor.SrcRegCred
	case t == tracingpolicy.TypeNetDevice:
		arg.Source = sensor.SrcRegNetDev
	case t == tracingpolicy.TypeDns:
		arg.Source = sensor.SrcRegDns
	case t == tracingpolicy.TypeSocket:
		arg.Source = sensor.SrcRegSocket
	case t == tracingpolicy.TypeKiocb:
		arg.Source = sensor.SrcRegKiocb
	case t == tracingpolicy.TypeIovIter:
		arg.Source = sensor.SrcRegIovIter
	case t == tracingpolicy.TypeUserNamespace:
		arg.Source = sensor.SrcRegUserNs
	case t == tracingpolicy.TypeBpfAttr:
		arg.Source = sensor.SrcRegBpfAttr
	case t == tracingpolicy.TypeBpfMap:
		arg.Source = sensor.SrcRegBpfMap
	case t == tracingpolicy.TypePerfEvent:
		arg.Source = sensor.SrcRegPerfEvent
	case t == tracingpolicy.TypeModule:
		arg.Source = sensor.SrcRegModule
	case t.CapSet():
		// the whole 64-bit set, unsigned
		return sensor.Arg{Source: sensor.SrcRegKCap, Reg: uint8(a.Index), Kind: sensor.KindInt}, nil
	case t == tracingpolicy.TypeSyscall64:
		return arg, errSyscall64(a)
	default:
		return arg, fmt.Errorf("argument %d: type %q is not supported on kernel functions (supported: integer types, fd, file, path, dentry, string, filename, sock, socket, skb, sockaddr, linux_binprm, cred, net_device, kiocb, iov_iter, user_namespace, bpf_attr, bpf_map, perf_event, module, kernel_cap_t, cap_inheritable, cap_permitted, cap_effective, dns, nop)", a.Index, a.Type)
	}
	return arg, nil
}

// intSource reads an integer (or fd) parameter from slot a.Index.
func intSource(a tracingpolicy.ArgSpec) sensor.Arg {
	t := a.Type
	if t == tracingpolicy.TypeFd {
		return sensor.Arg{Source: sensor.SrcRegFile, Reg: uint8(a.Index), Kind: sensor.KindFD, Size: 4, Signed: true}
	}
	arg := sensor.Arg{Source: sensor.SrcReg, Reg: uint8(a.Index), Kind: sensor.KindInt, Size: uint8(t.Size()), Signed: t.Signed()}
	if arg.Size == 8 {
		arg.Size = 0 // the whole register
	}
	return arg
}

// registerSource reads the arguments a user-space caller passed in
// registers (a system call's, or a C function's under a uprobe): integers,
// fds, and strings in the caller's memory. what names the callee for
// errors.
func registerSource(what string) argSource {
	return func(_ *sensor.ProgHookSpec, a tracingpolicy.ArgSpec) (sensor.Arg, error) {
		if a.Index < 0 || a.Index >= sensor.MaxParams {
			return sensor.Arg{}, fmt.Errorf("argument index %d: %s passes at most %d arguments in registers", a.Index, what, sensor.MaxParams)
		}
		t := a.Type
		switch {
		case a.Type.PlainInt(), t == tracingpolicy.TypeFd:
			return intSource(a), nil
		case t == tracingpolicy.TypeString, t == tracingpolicy.TypeFilename, t == tracingpolicy.TypeCharBuf:
			return sensor.Arg{Source: sensor.SrcRegUstr, Reg: uint8(a.Index), Kind: sensor.KindPath}, nil
		case t == tracingpolicy.TypeSockaddr:
			return sensor.Arg{Source: sensor.SrcRegSockaddr, Reg: uint8(a.Index), Kind: sensor.KindPath}, nil
		case t == tracingpolicy.TypeInt32Arr:
			return int32ArrSource(a), nil
		case t == tracingpolicy.TypeSyscall64:
			return sensor.Arg{}, errSyscall64(a)
		}
		return sensor.Arg{}, fmt.Errorf("argument %d: type %q cannot be read from %s (supported: integer types, fd, string, filename, char_buf, sockaddr, int32_arr)", a.Index, a.Type, what)
	}
}

// kernelFuncs returns the prototypes of the kernel the hooks load into.
func kernelFuncs(f Facts) (*tracingpolicy.BTFKernel, error) {
	spec, err := f.kernel()
	if err != nil {
		return nil, fmt.Errorf("loading kernel BTF for function prototypes: %w", err)
	}
	return tracingpolicy.NewBTFKernel(spec), nil
}

// errSyscall64 refuses syscall64 where it is not served: Tetragon reads it
// from tracepoints only (raw_syscalls' id), where the number names the
// system call being entered.
func errSyscall64(a tracingpolicy.ArgSpec) error {
	return fmt.Errorf("argument %d: type syscall64 is read from tracepoints only (raw_syscalls/sys_enter's id, as in Tetragon); declare the number as an integer type here", a.Index)
}
