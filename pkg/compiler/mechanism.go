package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// chooseMechanism picks what serves hook d on a kernel with features (probe
// feature names). Kprobes win where the kernel has them; the
// syscall-tracepoint mapping serves the rest. The policy's hook-mechanism
// option can force either; forcing kprobe where the kernel has none is an
// error naming the missing feature. why says, for the mapping's errors,
// why the mapping was chosen.
func chooseMechanism(d Decl, features map[string]bool) (mech, why string, err error) {
	var feature string
	switch {
	case d.Fentry:
		return fentryMechanism(d, features)
	case d.Kind == "", d.Kind == hookevent.KindKprobe:
	case d.Kind == hookevent.KindTracepoint && d.Raw:
		mech, feature = MechRawTracepoint, kernelfeatures.RawTracepoint
	case d.Kind == hookevent.KindTracepoint:
		mech, feature = MechTracepoint, kernelfeatures.Tracepoint
	case d.Kind == hookevent.KindUprobe, d.Kind == hookevent.KindUsdt:
		mech, feature = MechUprobe, kernelfeatures.Uprobe
	case d.Kind == hookevent.KindLSM:
		mech, feature = MechLSM, kernelfeatures.BPFLSM
	default:
		return "", "", fmt.Errorf("unknown hook kind %q", d.Kind)
	}
	if mech != "" {
		// one mechanism each; the hook-mechanism option is about kprobes:
		if !features[feature] {
			hint := ""
			if d.Kind == hookevent.KindLSM {
				hint = "; the kernel needs CONFIG_BPF_LSM and bpf in its lsm= boot list"
			}
			return "", "", fmt.Errorf("%s hooks need %s programs, which this kernel cannot attach (probe feature %s)%s", d.Kind, mech, feature, hint)
		}
		return mech, "", nil
	}
	missing := ""
	switch {
	case !features[kernelfeatures.Kprobe]:
		missing = kernelfeatures.Kprobe
	case (d.Return || returnCopies(d)) && !features[kernelfeatures.Kretprobe]:
		missing = kernelfeatures.Kretprobe
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

// fentryMechanism checks that the kernel can serve a spec.fentries hook:
// fentry programs, fexit ones for return: true, fmod_ret for Override
// (checked when the selectors are compiled). The hook-mechanism option is
// about kprobes and does not apply.
func fentryMechanism(d Decl, features map[string]bool) (string, string, error) {
	for _, need := range []struct {
		feature string
		on      bool
	}{{kernelfeatures.Fentry, true}, {kernelfeatures.Fexit, d.Return || returnCopies(d)}} {
		if need.on && !features[need.feature] {
			return "", "", fmt.Errorf("fentries need %s programs, which this kernel cannot load (probe feature %s)", need.feature, need.feature)
		}
	}
	return MechFentry, "", nil
}

// Name names a hook in messages and listings: its function, LSM hook,
// group/event, or path and symbol.
func (d Decl) Name() string {
	switch d.Kind {
	case hookevent.KindTracepoint:
		return d.Subsystem + "/" + d.Call
	case hookevent.KindUprobe:
		return d.Path + " " + d.Call
	case hookevent.KindUsdt:
		return d.Path + " " + d.Provider + ":" + d.Call
	}
	return d.Call
}
