package hooks

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/pkg/probe"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// chooseMechanism picks what serves hook d on a kernel with features (probe
// feature names). Kprobes win where the kernel has them; the
// syscall-tracepoint mapping serves the rest. The policy's hook-mechanism
// option can force either; forcing kprobe where the kernel has none is an
// error naming the missing feature. why says, for the mapping's errors,
// why the mapping was chosen.
func chooseMechanism(d HookDecl, features map[string]bool) (mech, why string, err error) {
	missing := ""
	switch {
	case !features[probe.Kprobe]:
		missing = probe.Kprobe
	case d.Return && !features[probe.Kretprobe]:
		missing = probe.Kretprobe
	}
	switch tp.HookMechanism(d.Mechanism) {
	case "", tp.MechanismAuto:
		if missing == "" {
			return MechKprobe, "", nil
		}
		return MechSyscallTracepoint, fmt.Sprintf("this kernel has no %ss (probe feature %s)", missing, missing), nil
	case tp.MechanismKprobe:
		if missing != "" {
			return "", "", fmt.Errorf("the policy asks for hook-mechanism kprobe, and this kernel has no %ss (probe feature %s)", missing, missing)
		}
		return MechKprobe, "", nil
	case tp.MechanismSyscallTracepoint:
		return MechSyscallTracepoint, "the policy asks for hook-mechanism syscall-tracepoint", nil
	}
	return "", "", fmt.Errorf("unknown hook-mechanism %q (want auto, kprobe or syscall-tracepoint)", d.Mechanism)
}

// loadKprobeHook compiles and attaches d as a kprobe (or fmod_ret) hook.
func loadKprobeHook(d HookDecl, id uint32, events *ebpf.Map, opts sensor.Options) (hookObject, hookInfo, error) {
	funcs, err := kernelFuncs(opts)
	if err != nil {
		return nil, hookInfo{}, fmt.Errorf("%s: %w", d.Call, err)
	}
	spec, info, err := compileKprobe(d, id, funcs, opts.Features)
	if err != nil {
		return nil, info, err
	}
	k, err := sensor.LoadKprobe(spec, events, opts)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", d.Call, err)
	}
	return k, info, nil
}

// loadSyscallHook compiles and attaches d through the syscall-tracepoint
// mapping; why says why the mapping serves it.
func loadSyscallHook(d HookDecl, id uint32, why string, events *ebpf.Map, opts sensor.Options) (hookObject, hookInfo, error) {
	spec, info, err := compileSyscallMapping(d, id, why)
	if err != nil {
		return nil, info, err
	}
	g, err := sensor.LoadGeneric(spec, events, opts)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", d.Call, err)
	}
	return g, info, nil
}
