package hooks

import (
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/tetragon-lite/tetragon/pkg/probe"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// compileKprobe compiles a hook for the kprobe mechanism: a kprobe on the
// function itself (a kretprobe too for return: true), or an fmod_ret
// program when a selector overrides the return value. Syscall hooks attach
// to the arch entry point (__x64_sys_openat) and read the syscall's
// arguments from the user registers it takes. Declared argument types are
// checked against the function's BTF prototype, since a kprobe reads
// whatever the register holds.
func compileKprobe(d HookDecl, id uint32, k tracingpolicy.Kernel, features map[string]bool) (sensor.KprobeSpec, hookInfo, error) {
	spec := sensor.KprobeSpec{ID: id, Return: d.Return}
	info := hookInfo{decl: d, mechanism: MechKprobe}
	var proto tracingpolicy.FuncProto
	name := syscallName(d.Call)
	nr, isSyscall := syscallNumbers()[name]
	if isSyscall && (d.Syscall || name != d.Call) {
		spec.Symbol, spec.Syscall, spec.SyscallNr = tracingpolicy.SyscallSymbol(name), true, nr
		if _, err := k.Func(spec.Symbol); err != nil {
			return spec, info, fmt.Errorf("%s: system call %s: %w", d.Call, name, err)
		}
	} else {
		var err error
		if proto, err = k.Func(d.Call); err != nil {
			return spec, info, fmt.Errorf("%s: %w", d.Call, err)
		}
		spec.Symbol = d.Call
	}
	arity := len(proto.Params)
	if spec.Syscall {
		arity = sensor.MaxParams
	}

	sources := make([]sensor.Arg, sensor.MaxParams) // by parameter index
	slot := map[int]int{}
	for _, a := range d.Args {
		if a.Index < 0 || a.Index >= arity || a.Index >= sensor.MaxParams {
			return spec, info, fmt.Errorf("%s: argument index %d: the function has %d parameters (at most %d can be read)", d.Call, a.Index, arity, sensor.MaxParams)
		}
		t := tracingpolicy.ArgType(a.Type)
		if !spec.Syscall {
			param := proto.Params[a.Index]
			if ok, need := tracingpolicy.ArgFits(t, param.Type); !ok {
				return spec, info, fmt.Errorf("%s: argument %d: type %s does not fit parameter %d (%s): %s needs %s", d.Call, a.Index, a.Type, a.Index, param.Type, a.Type, need)
			}
		}
		src, err := kprobeSource(a, spec.Syscall)
		if err != nil {
			return spec, info, fmt.Errorf("%s: %w", d.Call, err)
		}
		if _, dup := slot[a.Index]; dup {
			return spec, info, fmt.Errorf("%s: argument index %d declared twice", d.Call, a.Index)
		}
		sources[a.Index] = src
		spec.Params = max(spec.Params, a.Index+1)
		// record slots: the declared args, in declaration order
		slot[a.Index] = len(spec.Args)
		spec.Args = append(spec.Args, src)
		info.argOrder = append(info.argOrder, a)
	}
	if len(spec.Args) > sensor.MaxArgs {
		return spec, info, fmt.Errorf("%s: %d arguments, at most %d", d.Call, len(spec.Args), sensor.MaxArgs)
	}

	var overrideErr error
	if hasOverride(d) {
		switch {
		case !features[probe.FmodRet]:
			// bpf_override_return would serve it too, but Debian's kernels
			// lack it (CONFIG_BPF_KPROBE_OVERRIDE), so it is not implemented
			overrideErr = fmt.Errorf("action Override needs fmod_ret, which this kernel lacks (probe feature %s)", probe.FmodRet)
		case d.Return:
			overrideErr = fmt.Errorf("action Override changes the return value before the function runs, so the hook cannot also be a return probe")
		default:
			spec.Override, info.mechanism = true, MechFmodRet
		}
	}
	var err error
	spec.Selectors, info.limits, err = compileSelectors(d, spec.Args, slot, overrideErr)
	return spec, info, err
}

// kprobeSource says how the kprobe program reads a declared argument.
func kprobeSource(a ArgDecl, syscall bool) (sensor.Arg, error) {
	t := tracingpolicy.ArgType(a.Type)
	arg := sensor.Arg{Reg: uint8(a.Index), Kind: sensor.KindPath}
	switch {
	case isIntType(a.Type):
		arg.Source, arg.Kind = sensor.SrcReg, sensor.KindInt
		arg.Size, arg.Signed = uint8(t.Size()), t.Signed()
		if arg.Size == 8 {
			arg.Size = 0 // the whole register
		}
	case t == tracingpolicy.TypeFd:
		arg.Source, arg.Kind, arg.Size, arg.Signed = sensor.SrcRegFile, sensor.KindFD, 4, true
	case syscall && (t == tracingpolicy.TypeString || t == tracingpolicy.TypeFilename):
		arg.Source = sensor.SrcRegUstr
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
	default:
		what := "kernel functions"
		if syscall {
			what = "syscall hooks"
		}
		return arg, fmt.Errorf("argument %d: type %q is not supported on %s by the kprobe mechanism (supported: integer types, fd, file, path, dentry, string, filename)", a.Index, a.Type, what)
	}
	if syscall && (arg.Source == sensor.SrcRegKFile || arg.Source == sensor.SrcRegKPath || arg.Source == sensor.SrcRegDentry) {
		return arg, fmt.Errorf("argument %d: a system call takes no %s (use fd)", a.Index, a.Type)
	}
	return arg, nil
}

// kernelFuncs returns the prototypes of the kernel the hooks load into.
func kernelFuncs(opts sensor.Options) (tracingpolicy.Kernel, error) {
	if opts.KernelTypes != nil {
		return tracingpolicy.NewBTFKernel(opts.KernelTypes), nil
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("loading kernel BTF for function prototypes: %w", err)
	}
	return tracingpolicy.NewBTFKernel(spec), nil
}
