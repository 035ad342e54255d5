package hooks

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// ArgDecl is a declared hook argument.
type ArgDecl struct {
	Index int
	Type  string
	Label string
}

// MatchDecl is a matchArgs entry.
type MatchDecl struct {
	Index    int
	Operator string
	Values   []string
}

// ActionDecl is a matchActions entry.
type ActionDecl struct {
	Action   string
	ArgSig   uint32
	ArgError int32
	// RateLimit (Post): events of one selector are posted at most once per
	// period and scope ("thread" by default, "process" or "global").
	RateLimit      time.Duration
	RateLimitScope string
}

// SelectorDecl is one selector.
type SelectorDecl struct {
	MatchArgs []MatchDecl
	Actions   []ActionDecl
	Src       tracingpolicy.Source
}

// HookKind says which list of a policy a hook comes from.
type HookKind string

// Hook kinds.
const (
	KindKprobe     HookKind = "kprobe"
	KindTracepoint HookKind = "tracepoint"
	KindUprobe     HookKind = "uprobe"
	KindLSM        HookKind = "lsm"
)

// HookDecl is one hook of a policy (a kprobes:, tracepoints:, uprobes: or
// lsmhooks: entry, one per symbol for uprobes), as the policy states it.
type HookDecl struct {
	// Kind is the list the hook comes from; "" is KindKprobe.
	Kind   HookKind
	Policy string
	// Call is the kernel function (kprobes), the LSM hook (lsmhooks) or
	// the symbol (uprobes).
	Call    string
	Syscall bool
	Return  bool
	// Subsystem and Raw: a tracepoint's group (Call is its event), and
	// whether it is read as a raw tracepoint.
	Subsystem string
	Raw       bool
	// Path is a uprobe's executable; Offset, when not zero, the probed
	// file offset (Call then names it for messages).
	Path      string
	Offset    uint64
	Args      []ArgDecl
	Selectors []SelectorDecl
	Message   string
	Tags      []string
	// Mechanism is the policy's hook-mechanism option: "" or "auto" lets
	// the kernel's features decide, MechKprobe or MechSyscallTracepoint
	// forces one.
	Mechanism string
	// Src locates the hook in its policy file, for errors; zero for hooks
	// not read from a file.
	Src tracingpolicy.Source
}

// Mechanism names reported in events and listings.
const (
	MechSyscallTracepoint = "syscall-tracepoint"
	MechKprobe            = "kprobe"
	// MechFmodRet serves hooks with an Override selector where the kernel
	// has fmod_ret but no bpf_override_return.
	MechFmodRet       = "fmod_ret"
	MechLSM           = "lsm"
	MechTracepoint    = "tracepoint"
	MechRawTracepoint = "raw_tracepoint"
	MechUprobe        = "uprobe"
)

// hookInfo is what user space needs to turn a hook's records into events.
type hookInfo struct {
	decl      HookDecl
	mechanism string
	// argOrder[i] is the declared arg whose value sits in record slot i
	argOrder []ArgDecl
	// limits[i] is selector i's Post rate limit, if it has one
	limits []rateLimit
}

type rateLimit struct {
	period time.Duration
	scope  string
}

func isIntType(t string) bool {
	switch t {
	case "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
		"size_t", "long", "s64", "u64", "s32", "u32":
		return true
	}
	return false
}

func isPathType(t string) bool {
	switch t {
	case "file", "path", "dentry", "fd", "filename", "string", "char_buf":
		return true
	}
	return false
}

// compileSyscallMapping compiles a hook for the syscall-tracepoint
// mechanism; why says why that mechanism serves it, for errors.
func compileSyscallMapping(d HookDecl, id uint32, why string) (sensor.HookSpec, hookInfo, error) {
	spec := sensor.HookSpec{ID: id}
	info := hookInfo{decl: d, mechanism: MechSyscallTracepoint}
	var sources []sensor.Arg // by function argument index
	name := syscallName(d.Call)
	nr, isSyscall := syscallNumbers()[name]
	if isSyscall && (d.Syscall || name != d.Call) {
		flags := uint8(sensor.OnEnter)
		if d.Return {
			flags = sensor.OnExit
		}
		spec.Syscalls = map[uint32]sensor.Syscall{nr: {Flags: flags, Variants: []sensor.Variant{{FD: sensor.VarFDRet}}}}
		for i := 0; i < 6; i++ {
			sources = append(sources, sensor.Arg{Source: sensor.SrcReg, Reg: uint8(i), Kind: sensor.KindInt})
		}
		for _, a := range d.Args {
			if a.Index < 0 || a.Index > 5 {
				return spec, info, fmt.Errorf("%s: argument index %d out of range 0..5", d.Call, a.Index)
			}
			switch {
			case isIntType(a.Type):
			case a.Type == "string" || a.Type == "filename":
				sources[a.Index] = sensor.Arg{Source: sensor.SrcRegUstr, Reg: uint8(a.Index), Kind: sensor.KindPath}
			case a.Type == "fd":
				sources[a.Index] = sensor.Arg{Source: sensor.SrcRegFile, Reg: uint8(a.Index), Kind: sensor.KindFD}
			default:
				return spec, info, fmt.Errorf("%s: argument %d: type %q is not supported on syscall hooks by the syscall-tracepoint mechanism (supported: int types, string, filename, fd)", d.Call, a.Index, a.Type)
			}
		}
	} else {
		m, ok := syscallMapping(d.Call)
		if !ok {
			return spec, info, fmt.Errorf("%s: %s, and %s has no syscall-tracepoint mapping (mapped: fd_install, security_file_open, security_file_permission, security_mmap_file, security_path_truncate, security_file_truncate and syscalls)", d.Call, why, d.Call)
		}
		if d.Return {
			return spec, info, fmt.Errorf("%s: return probes are not available through the syscall-tracepoint mapping", d.Call)
		}
		spec.Syscalls = m.syscalls
		sources = m.args
		for _, a := range d.Args {
			if a.Index < 0 || a.Index >= len(sources) {
				return spec, info, fmt.Errorf("%s: argument index %d: the function has %d arguments", d.Call, a.Index, len(sources))
			}
			src := sources[a.Index]
			if src.Kind == sensor.KindInt && !isIntType(a.Type) || src.Kind != sensor.KindInt && !isPathType(a.Type) {
				return spec, info, fmt.Errorf("%s: argument %d is declared %q, which does not fit the function's parameter", d.Call, a.Index, a.Type)
			}
		}
	}

	// record slots: the declared args, in declaration order
	slot := map[int]int{}
	for _, a := range d.Args {
		if _, dup := slot[a.Index]; dup {
			return spec, info, fmt.Errorf("%s: argument index %d declared twice", d.Call, a.Index)
		}
		slot[a.Index] = len(spec.Args)
		spec.Args = append(spec.Args, sources[a.Index])
		info.argOrder = append(info.argOrder, a)
	}
	if len(spec.Args) > sensor.MaxArgs {
		return spec, info, fmt.Errorf("%s: %d arguments, at most %d", d.Call, len(spec.Args), sensor.MaxArgs)
	}

	noOverride := fmt.Errorf("action Override needs bpf_override_return, fmod_ret or BPF LSM, which the syscall-tracepoint mechanism does not have; it serves this hook because %s", why)
	var err error
	spec.Selectors, info.limits, err = compileSelectors(d, spec.Args, slot, noOverride)
	return spec, info, err
}

// compileSelectors compiles a hook's selectors over its compiled args;
// slot maps a declared argument index to its record slot. overrideErr says
// why the mechanism cannot serve Override, nil when it can.
func compileSelectors(d HookDecl, args []sensor.Arg, slot map[int]int, overrideErr error) ([]sensor.Selector, []rateLimit, error) {
	var sels []sensor.Selector
	var limits []rateLimit
	for si, s := range d.Selectors {
		sel := sensor.Selector{}
		for _, m := range s.MatchArgs {
			i, ok := slot[m.Index]
			if !ok {
				return nil, nil, fmt.Errorf("%s: selectors[%d]: matchArgs index %d is not a declared argument", d.Call, si, m.Index)
			}
			cm, err := compileMatch(args[i], i, m)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: selectors[%d]: %w", d.Call, si, err)
			}
			sel.Matches = append(sel.Matches, cm)
		}
		var err error
		sel.Actions, sel.Signal, sel.Error, err = compileActions(s.Actions, overrideErr)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: selectors[%d]: %w", d.Call, si, err)
		}
		var rl rateLimit
		for _, a := range s.Actions {
			if a.RateLimit > 0 {
				rl = rateLimit{period: a.RateLimit, scope: a.RateLimitScope}
			}
		}
		limits = append(limits, rl)
		sels = append(sels, sel)
	}
	return sels, limits, nil
}

func compileMatch(arg sensor.Arg, slot int, m MatchDecl) (sensor.Match, error) {
	cm := sensor.Match{Arg: slot}
	isInt := arg.Kind == sensor.KindInt
	switch m.Operator {
	case "Equal":
		cm.Op = sensor.OpEqual
	case "NotEqual":
		cm.Op = sensor.OpNotEqual
	case "Prefix":
		cm.Op = sensor.OpPrefix
	case "NotPrefix":
		cm.Op = sensor.OpNotPrefix
	case "Postfix":
		cm.Op = sensor.OpPostfix
	case "NotPostfix":
		cm.Op = sensor.OpNotPostfix
	case "Mask":
		cm.Op = sensor.OpMask
	case "GreaterThan", "GT":
		cm.Op = sensor.OpGT
	case "LessThan", "LT":
		cm.Op = sensor.OpLT
	default:
		return cm, fmt.Errorf("operator %q is not supported in the kernel (supported: Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, Mask, GreaterThan, LessThan)", m.Operator)
	}
	switch cm.Op {
	case sensor.OpPrefix, sensor.OpNotPrefix, sensor.OpPostfix, sensor.OpNotPostfix:
		if isInt {
			return cm, fmt.Errorf("operator %s needs a string or path argument", m.Operator)
		}
	case sensor.OpMask, sensor.OpGT, sensor.OpLT:
		if !isInt {
			return cm, fmt.Errorf("operator %s needs an integer argument", m.Operator)
		}
	}
	if isInt {
		for _, v := range m.Values {
			n, err := strconv.ParseInt(v, 0, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(v, 0, 64)
				if uerr != nil {
					return cm, fmt.Errorf("value %q is not an integer", v)
				}
				n = int64(u)
			}
			cm.Ints = append(cm.Ints, n)
		}
		if len(cm.Ints) > sensor.MaxIntValues {
			return cm, fmt.Errorf("%d integer values, at most %d", len(cm.Ints), sensor.MaxIntValues)
		}
		return cm, nil
	}
	cm.Strings = m.Values
	return cm, nil
}

// compileActions returns a selector's action flags, signal and Override
// error value. overrideErr is the error for Override where the mechanism
// cannot serve it, nil where it can.
func compileActions(acts []ActionDecl, overrideErr error) (flags, sig uint8, errno int32, err error) {
	if len(acts) == 0 {
		return sensor.ActPost, 0, 0, nil
	}
	post := true
	for _, a := range acts {
		switch a.Action {
		case "Post":
		case "NoPost":
			post = false
		case "Sigkill":
			flags |= sensor.ActSigkill
		case "Signal":
			if a.ArgSig == 0 || a.ArgSig > 64 {
				return 0, 0, 0, fmt.Errorf("action Signal needs argSig between 1 and 64, got %d", a.ArgSig)
			}
			flags |= sensor.ActSignal
			sig = uint8(a.ArgSig)
		case "Override":
			if overrideErr != nil {
				return 0, 0, 0, overrideErr
			}
			flags |= sensor.ActOverride
			errno = a.ArgError
		default:
			return 0, 0, 0, fmt.Errorf("action %q is not supported", a.Action)
		}
	}
	if post {
		flags |= sensor.ActPost
	}
	return flags, sig, errno, nil
}

// hasOverride reports whether any selector of d overrides the return value.
func hasOverride(d HookDecl) bool {
	for _, s := range d.Selectors {
		for _, a := range s.Actions {
			if a.Action == "Override" {
				return true
			}
		}
	}
	return false
}
