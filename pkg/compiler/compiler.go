// Package compiler turns a TracingPolicy's hooks into what the sensor
// loads: it picks the mechanism the kernel offers for each hook, and
// compiles its arguments, selectors and actions into the dispatcher's
// HookSpec or a bpf/hook.c object's ProgHookSpec, with the description its
// records' events need (hookevent.Hook).
//
// It makes no BPF call: it loads, attaches and pins nothing, and the
// kernel's BTF and probed features are given to it (Facts), so that it
// can be tested, and fuzzed, without root. It does read files that
// describe the kernel or a probed binary: tracefs (tracepoint formats,
// available_filter_functions), /proc/1 (the host's namespaces and root),
// and a USDT binary's notes.
package compiler

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// Facts are what the compiler knows of the kernel it compiles for.
type Facts struct {
	// Features are the probed kernel features (kernelfeatures names): they
	// pick each hook's mechanism.
	Features map[string]bool
	// Kernel is the kernel's BTF: kernel functions', LSM hooks' and raw
	// tracepoints' prototypes, and the system calls of generated_syscalls
	// lists. Nil when it could not be read; KernelErr then says why, and
	// only the hooks that need it fail, with that reason.
	Kernel    *btf.Spec
	KernelErr error
}

// kernel returns the kernel's BTF, or why there is none.
func (f Facts) kernel() (*btf.Spec, error) {
	if f.Kernel != nil {
		return f.Kernel, nil
	}
	if f.KernelErr != nil {
		return nil, f.KernelErr
	}
	return nil, errors.New("the kernel's BTF was not given to the compiler")
}

// Compiled is one hook compiled for its mechanism: exactly one of
// Syscalls and Progs is set.
type Compiled struct {
	// Syscalls is the hook as the syscall dispatcher serves it (the
	// syscall-tracepoint mechanism).
	Syscalls *sensor.HookSpec
	// Progs is the hook as bpf/hook.c objects serve it: one, or one per
	// site of a USDT probe (one hook, one id, several uprobes).
	Progs []sensor.ProgHookSpec
	// Event describes the hook to the event builder of its records.
	Event hookevent.Hook
}

// Hook compiles hook d with id id for the mechanism that serves it on a
// kernel with facts. d is one hook of an expanded policy (ExpandLists).
func Hook(d Decl, id uint32, facts Facts) (Compiled, error) {
	mech, why, err := chooseMechanism(d, facts.Features)
	if err != nil {
		return Compiled{}, fmt.Errorf("%s: %w", d.Name(), err)
	}
	var c Compiled
	var info hookInfo
	switch mech {
	case MechSyscallTracepoint:
		var spec sensor.HookSpec
		if spec, info, err = compileSyscallMapping(d, id, why); err != nil {
			return Compiled{}, err
		}
		spec.Scoped = d.Scope != nil
		c.Syscalls = &spec
	case MechKprobe, MechFentry:
		funcs, err := kernelFuncs(facts)
		if err != nil {
			return Compiled{}, fmt.Errorf("%s: %w", d.Call, err)
		}
		spec, kinfo, err := compileKprobe(d, id, funcs, facts.Features)
		if err != nil {
			return Compiled{}, err
		}
		c.Progs, info = []sensor.ProgHookSpec{spec}, kinfo
	default:
		if c.Progs, info, err = compileFunc(d, id, facts); err != nil {
			return Compiled{}, err
		}
	}
	for i := range c.Progs {
		c.Progs[i].Scoped = d.Scope != nil
	}
	c.Event = info.event
	return c, nil
}

// compileFunc compiles a hook of another kind than kprobes: tracepoints,
// uprobes, USDT probes and LSM hooks, which bpf/hook.c's programs serve
// too.
func compileFunc(d Decl, id uint32, facts Facts) ([]sensor.ProgHookSpec, hookInfo, error) {
	var spec sensor.ProgHookSpec
	var info hookInfo
	var err error
	switch d.Kind {
	case hookevent.KindUprobe:
		spec, info, err = compileUprobe(d, id)
	case hookevent.KindUsdt:
		return compileUsdt(d, id)
	default:
		funcs, ferr := kernelFuncs(facts)
		if ferr != nil {
			return nil, hookInfo{}, fmt.Errorf("%s: %w", d.Name(), ferr)
		}
		if d.Kind == hookevent.KindLSM {
			spec, info, err = compileLSM(d, id, funcs)
		} else {
			spec, info, err = compileTracepoint(d, id, funcs)
		}
	}
	if err != nil {
		return nil, info, err
	}
	return []sensor.ProgHookSpec{spec}, info, nil
}
