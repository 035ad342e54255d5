package sensor

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// Limits of one hook, as compiled into bpf/lib/hook.h (shared by
// bpf/dispatch.c and bpf/hook.c).
const (
	MaxArgs      = int(bpf.HookHookLimitHL_MAX_ARGS)
	MaxSelectors = int(bpf.HookHookLimitHL_MAX_SELECTORS)
	// MaxMatchArgs bounds the filter entries of one selector, all lists
	// together (matchArgs, matchReturnArgs, matchPIDs, matchBinaries,
	// matchNamespaces, matchCapabilities).
	MaxMatchArgs  = int(bpf.HookHookLimitHL_MAX_MATCH_ARGS)
	MaxIntValues  = int(bpf.HookHookLimitHL_MAX_VALUES)
	MaxStringArgs = int(bpf.HookHookLimitHL_MAX_STRS)
	// MaxMatchString is the longest string a string operator can match
	// (the LPM trie's key data, less the terminating NUL).
	MaxMatchString = int(bpf.HookHookLimitHL_LPM_DATA) - 1
	sysTableLen    = uint32(bpf.DispatchDispatchLimitDL_SYS_TABLE_LEN)
)

// ArgSource says where a hook argument comes from (enum arg_src). Reg is
// the syscall argument register for the syscall-tracepoint mapping and the
// function's parameter index for a kprobe.
type ArgSource uint8

// Argument sources.
const (
	SrcReg     = ArgSource(bpf.HookArgSrcSRC_REG)      // argument Reg (integer)
	SrcRet     = ArgSource(bpf.HookArgSrcSRC_RET)      // return value
	SrcRegFile = ArgSource(bpf.HookArgSrcSRC_REG_FILE) // file behind the fd in argument Reg
	SrcRetFile = ArgSource(bpf.HookArgSrcSRC_RET_FILE) // file behind the returned fd
	SrcVarFile = ArgSource(bpf.HookArgSrcSRC_VAR_FILE) // file behind the fd the syscall variant names
	SrcVarMask = ArgSource(bpf.HookArgSrcSRC_VAR_MASK) // access mask the syscall variant implies
	SrcRegUstr = ArgSource(bpf.HookArgSrcSRC_REG_USTR) // user-space string in argument Reg
	SrcVarPath = ArgSource(bpf.HookArgSrcSRC_VAR_PATH) // variant's file, or its user-space path string

	// Kernel-pointer parameters of a kprobe.
	SrcRegKFile    = ArgSource(bpf.HookArgSrcSRC_REG_KFILE)    // struct file *
	SrcRegKPath    = ArgSource(bpf.HookArgSrcSRC_REG_KPATH)    // struct path *
	SrcRegDentry   = ArgSource(bpf.HookArgSrcSRC_REG_DENTRY)   // struct dentry * (path within its file system)
	SrcRegStr      = ArgSource(bpf.HookArgSrcSRC_REG_STR)      // char * in kernel or user memory
	SrcRegFilename = ArgSource(bpf.HookArgSrcSRC_REG_FILENAME) // struct filename *
)

// ArgKind is how an argument's value is kept (enum arg_type).
type ArgKind uint8

// Argument kinds.
const (
	KindInt  = ArgKind(bpf.HookArgTypeT_INT)
	KindPath = ArgKind(bpf.HookArgTypeT_PATH)
	KindFD   = ArgKind(bpf.HookArgTypeT_FD)
)

// Op is a selector operator (enum match_op).
type Op uint8

// Operators.
const (
	OpEqual      = Op(bpf.HookMatchOpMOP_EQUAL)
	OpNotEqual   = Op(bpf.HookMatchOpMOP_NOT_EQUAL)
	OpPrefix     = Op(bpf.HookMatchOpMOP_PREFIX)
	OpNotPrefix  = Op(bpf.HookMatchOpMOP_NOT_PREFIX)
	OpMask       = Op(bpf.HookMatchOpMOP_MASK)
	OpGT         = Op(bpf.HookMatchOpMOP_GT)
	OpLT         = Op(bpf.HookMatchOpMOP_LT)
	OpPostfix    = Op(bpf.HookMatchOpMOP_POSTFIX)
	OpNotPostfix = Op(bpf.HookMatchOpMOP_NOT_POSTFIX)
	// Socket operators, on SrcRegSock, SrcRegSocket and SrcRegSockaddr
	// arguments (match_sock): addresses against Prefixes, the others against Ints
	// holding ranges (SockRange).
	OpSAddr    = Op(bpf.HookMatchOpMOP_SADDR)
	OpNotSAddr = Op(bpf.HookMatchOpMOP_NOT_SADDR)
	OpDAddr    = Op(bpf.HookMatchOpMOP_DADDR)
	OpNotDAddr = Op(bpf.HookMatchOpMOP_NOT_DADDR)
	OpSPort    = Op(bpf.HookMatchOpMOP_SPORT)
	OpNotSPort = Op(bpf.HookMatchOpMOP_NOT_SPORT)
	OpDPort    = Op(bpf.HookMatchOpMOP_DPORT)
	OpNotDPort = Op(bpf.HookMatchOpMOP_NOT_DPORT)
	OpProtocol = Op(bpf.HookMatchOpMOP_PROTOCOL)
	OpFamily   = Op(bpf.HookMatchOpMOP_FAMILY)
	OpState    = Op(bpf.HookMatchOpMOP_STATE)
	// OpInRange and OpNotInRange: on integers, Ints holding inclusive
	// (lo, hi) pairs, in the argument type's order.
	OpInRange    = Op(bpf.HookMatchOpMOP_IN_RANGE)
	OpNotInRange = Op(bpf.HookMatchOpMOP_NOT_IN_RANGE)
	// OpSubString and OpSubStringIgnCase: on strings and paths, whether
	// one of Strings occurs in the value (match_substr); IgnCase values
	// must be lower-case, as the kernel lower-cases the value (ASCII).
	OpSubString        = Op(bpf.HookMatchOpMOP_SUBSTR)
	OpSubStringIgnCase = Op(bpf.HookMatchOpMOP_SUBSTR_IGNCASE)
	// OpFileType and OpNotFileType: on files and paths, the file's type
	// (an S_IFMT value of Ints).
	OpFileType    = Op(bpf.HookMatchOpMOP_FILE_TYPE)
	OpNotFileType = Op(bpf.HookMatchOpMOP_NOT_FILE_TYPE)
)

// SockSource reports whether arguments from src are read as a socket (the
// socket operators apply).
func SockSource(src ArgSource) bool {
	return src == SrcRegSock || src == SrcRegSocket || src == SrcRegSkb || src == SrcRegSockaddr
}

// Action flags.
const (
	ActPost    = uint8(bpf.HookActFlagACT_POST)
	ActSigkill = uint8(bpf.HookActFlagACT_SIGKILL)
	ActSignal  = uint8(bpf.HookActFlagACT_SIGNAL)
	// ActOverride makes the function return Selector.Error instead of
	// running; only the fmod_ret program of bpf/hook.c carries it out.
	ActOverride = uint8(bpf.HookActFlagACT_OVERRIDE)
)

// Syscall table flags (SE_* in bpf/dispatch.c).
const (
	OnEnter  = uint8(bpf.DispatchSysFlagSE_ENTER)
	OnExit   = uint8(bpf.DispatchSysFlagSE_EXIT)
	RetOK    = uint8(bpf.DispatchSysFlagSE_RET_OK)
	NeedFile = uint8(bpf.DispatchSysFlagSE_NEED_FILE)
	// FuncRet: a return probe on the mapped function, whose return value
	// is derived from the syscall's at sys_exit (0 when the syscall
	// succeeded; no record when it failed, unless Refusals).
	FuncRet = uint8(bpf.DispatchSysFlagSE_FUNC_RET)
	// Refusals: with FuncRet, the syscall's EACCES or EPERM is the
	// function's own refusal and is reported as its return value.
	Refusals = uint8(bpf.DispatchSysFlagSE_REFUSALS)
)

// Variant fd sources besides a register index.
const (
	VarFDRet = uint8(bpf.DispatchVarFdVAR_FD_RET)
	VarNoFD  = uint8(bpf.DispatchVarFdVAR_NO_FD)
)

// Variant is one reading of a syscall: which fd it acts on and with what access.
type Variant struct {
	FD   uint8
	Mask uint8
}

// Syscall is one syscall a hook attaches to.
type Syscall struct {
	Flags    uint8
	Variants []Variant
}

// Arg is a hook argument.
type Arg struct {
	Source ArgSource
	Reg    uint8
	Kind   ArgKind
	// Size is an integer's width in bytes (1, 2, 4; 0 means 8) and Signed
	// its signedness: a register carrying a narrower parameter has
	// undefined upper bits, which the kprobe program clears or extends.
	// The syscall-tracepoint mapping reads whole registers.
	Size   uint8
	Signed bool
	// Resolve, when not empty, is the path of struct members the kprobe
	// program follows from the parameter before reading it as Source
	// (bpf/hook.c only).
	Resolve []ResolveStep
	// Count is an int32_arr's element count (SrcRegI32Arr only), which
	// the kernel finds above the string slot's bit of arg_conf.str.
	Count uint8
}

// MatchKind says what a selector entry filters on (enum match_kind).
type MatchKind uint8

// Match kinds.
const (
	MatchArg       = MatchKind(bpf.HookMatchKindMK_ARG)    // matchArgs: argument Arg
	MatchReturn    = MatchKind(bpf.HookMatchKindMK_RET)    // matchReturnArgs: the return value
	MatchPID       = MatchKind(bpf.HookMatchKindMK_PID)    // matchPIDs: the process id (Ints)
	MatchNamespace = MatchKind(bpf.HookMatchKindMK_NS)     // matchNamespaces: namespace Arg (NsKind) in Ints
	MatchCaps      = MatchKind(bpf.HookMatchKindMK_CAPS)   // matchCapabilities: set Arg (CapSet) against the mask Ints[0]
	MatchBinary    = MatchKind(bpf.HookMatchKindMK_BINARY) // matchBinaries: the executable's path (Strings)
	// matchCapabilityChanges: set Arg (CapSet) against the process's exec
	// record, the mask Ints[0]
	MatchCapChange = MatchKind(bpf.HookMatchKindMK_CAP_CHANGE)
	// matchNamespaceChanges: the namespaces against the process's exec
	// record, Ints[0] a bit per NsKind
	MatchNsChange = MatchKind(bpf.HookMatchKindMK_NS_CHANGE)
)

// NsKind is a namespace kind of matchNamespaces (enum ns_kind).
type NsKind uint8

// Namespace kinds, in Tetragon's order.
const (
	NsUts NsKind = iota
	NsIpc
	NsMnt
	NsPid
	NsPidForChildren
	NsNet
	NsTime
	NsTimeForChildren
	NsCgroup
	NsUser
	nsKinds
)

// CapSet is a capability set of matchCapabilities (enum cap_set).
type CapSet uint8

// Capability sets.
const (
	CapsEffective CapSet = iota
	CapsInheritable
	CapsPermitted
	capSets
)

// match_arg.flags (MF_* in bpf/lib/hook.h)
const (
	mfFollow = uint8(bpf.HookMatchFlagMF_FOLLOW)
	mfNsPID  = uint8(bpf.HookMatchFlagMF_NS_PID)
	mfNsCap  = uint8(bpf.HookMatchFlagMF_NS_CAP)
	mfSigned = uint8(bpf.HookMatchFlagMF_SIGNED)
	mfParent = uint8(bpf.HookMatchFlagMF_PARENT)
)

// Match is one filter entry of a selector. Op is OpEqual for In and
// OpNotEqual for NotIn.
type Match struct {
	Kind MatchKind
	// Arg is the argument's record slot (MatchArg), the NsKind
	// (MatchNamespace) or the CapSet (MatchCaps).
	Arg     int
	Op      Op
	Ints    []int64
	Strings []string
	// Prefixes are the CIDRs of an address operator (OpSAddr..OpNotDAddr).
	Prefixes []netip.Prefix
	// Follow also matches descendants of a matching process (followForks,
	// followChildren), up to the kernel's ancestor bound.
	Follow bool
	// Parent matches a MatchBinary entry on the parent process's
	// executable instead of the process's own (matchParentBinaries); with
	// Follow, on the parent's or any further ancestor's.
	Parent bool
	// NamespacePID compares the pid as the process sees it in its own pid
	// namespace (isNamespacePID).
	NamespacePID bool
	// HostUserNS, when not 0, is the inode number of the host's user
	// namespace, where a MatchCaps entry then never holds
	// (isNamespaceCapability).
	HostUserNS uint32
	// Size and Signed give the width of a MatchReturn value (1, 2, 4; 0
	// means 8): the register a kretprobe reads has undefined upper bits
	// after a function that returns a narrower type.
	Size   uint8
	Signed bool
}

// Selector is one selector: all its matches must hold.
type Selector struct {
	Matches []Match
	Actions uint8
	Signal  uint8
	// Error is what the function returns under ActOverride.
	Error int32
	// SockArg is the record slot of the sock, socket or skb argument
	// ActTrackSock and ActUntrackSock act on.
	SockArg int
	// RegWrites are the registers the selector writes (Set, Regs; uprobe
	// hooks only).
	RegWrites []RegWrite
}

// HookSpec is a compiled hook: everything bpf/dispatch.c needs.
type HookSpec struct {
	ID        uint32
	Syscalls  map[uint32]Syscall
	Args      []Arg
	Selectors []Selector
	// Scoped limits the hook to the cgroups SetCgroups names (none until
	// then): a policy's podSelector, containerSelector or namespace.
	Scoped bool
	// Key is the hook's identity across runs: a hook adopted from a
	// previous run is the same hook as one of this run when their keys
	// are equal (reconcile). ID alone is not enough: ids are unique among
	// one run's hooks only, as a collision moves one on in the order the
	// policies load.
	Key uint64
}

// GenericStats are a hook's kernel-side counters.
type GenericStats struct {
	Calls, Matched, Posted, Drops, Signals uint64
	// Cached counts calls decided by the dispatcher's verdict cache.
	Cached uint64
	// Passed counts calls a list's prefilter decided: no hook's
	// selectors ran.
	Passed uint64
	// MemoryBytes is what the kernel charges for the hook's programs and
	// maps (the shared ring buffer not included); for a hook the syscall
	// dispatcher serves, the entries it adds to the dispatcher's maps.
	MemoryBytes uint64
}

// slotCounter numbers the match slots of a hook object that serves one
// hook: 1, 2, ...
func slotCounter() func() (uint16, error) {
	var n uint16
	return func() (uint16, error) {
		n++
		return n, nil
	}
}

// needsSlot reports whether a filter entry matches strings or addresses,
// which the kernel looks up in the trie under the entry's slot.
func needsSlot(m Match, args []Arg) bool {
	switch m.Kind {
	case MatchBinary:
		return true
	case MatchArg:
		if m.Arg < 0 || m.Arg >= len(args) {
			return false
		}
		if m.Op >= OpSAddr && m.Op <= OpState {
			return m.Op <= OpNotDAddr
		}
		return args[m.Arg].Kind != KindInt
	}
	return false
}

// encodeConf encodes a hook's configuration and the trie keys of its
// match strings; slot gives each entry that matches strings its own trie
// slot.
func encodeConf(spec HookSpec, slot func() (uint16, error)) (bpf.HookGenConf, []bpf.HookLpmKey, error) {
	var c bpf.HookGenConf
	var keys []bpf.HookLpmKey
	if len(spec.Args) > MaxArgs || len(spec.Selectors) > MaxSelectors {
		return c, nil, fmt.Errorf("hook has %d args and %d selectors, at most %d and %d", len(spec.Args), len(spec.Selectors), MaxArgs, MaxSelectors)
	}
	c.HookId = spec.ID
	c.Key = spec.Key
	c.Nargs = uint8(len(spec.Args))
	c.Nsel = uint8(len(spec.Selectors))
	c.Cacheable = boolByte(cacheable(spec))
	c.Scoped = boolByte(spec.Scoped)
	strSlot := uint8(0)
	for i, a := range spec.Args {
		c.Args[i].Src, c.Args[i].Reg, c.Args[i].Type = uint8(a.Source), a.Reg, uint8(a.Kind)
		if a.Kind == KindPath || a.Kind == KindFD {
			if int(strSlot) == MaxStringArgs {
				return c, nil, fmt.Errorf("at most %d path or string arguments per hook", MaxStringArgs)
			}
			c.Args[i].Str = strSlot
			if a.Source == SrcRegI32Arr {
				if a.Count == 0 || int(a.Count) > MaxInt32Arr {
					return c, nil, fmt.Errorf("argument %d: int32_arr of %d elements, 1 to %d are read", i, a.Count, MaxInt32Arr)
				}
				c.Args[i].Str |= a.Count << 1
			}
			strSlot++
		}
	}
	for si, s := range spec.Selectors {
		if len(s.Matches) > MaxMatchArgs {
			return c, nil, fmt.Errorf("selector %d: %d filter entries (matchArgs, matchReturnArgs, matchPIDs, matchBinaries, matchNamespaces, matchCapabilities and the change filters together), at most %d", si, len(s.Matches), MaxMatchArgs)
		}
		sel := &c.Sel[si]
		sel.Nmatch, sel.Actions, sel.Sig, sel.Err = uint8(len(s.Matches)), s.Actions, s.Signal, s.Error
		sel.Refresh = refreshFlags(s)
		for mi, m := range s.Matches {
			var e matchArg
			var ms uint16
			if needsSlot(m, spec.Args) {
				var err error
				if ms, err = slot(); err != nil {
					return c, nil, err
				}
			}
			strs, err := encodeMatch(&e, m, spec.Args, ms)
			if err != nil {
				return c, nil, fmt.Errorf("selector %d: %w", si, err)
			}
			cm := &sel.M[mi]
			cm.Arg, cm.Op, cm.Nvals, cm.Kind, cm.Flags, cm.Size, cm.Slot, cm.Vals = e.Arg, e.Op, e.Nvals, e.Kind, e.Flags, e.Size, e.Slot, e.Vals
			keys = append(keys, strs...)
		}
	}
	return c, keys, nil
}

// encodeMatch fills one struct match_arg and returns the LPM keys of its
// strings, which go to the LPM slot given.
func encodeMatch(cm *matchArg, m Match, args []Arg, slot uint16) ([]bpf.HookLpmKey, error) {
	cm.Kind, cm.Op, cm.Slot = uint8(m.Kind), uint8(m.Op), slot
	if m.Follow {
		cm.Flags |= mfFollow
	}
	ints := func(what string) error {
		if len(m.Ints) > MaxIntValues {
			return fmt.Errorf("%s: %d values, at most %d", what, len(m.Ints), MaxIntValues)
		}
		cm.Nvals = uint8(len(m.Ints))
		copy(cm.Vals[:], m.Ints)
		return nil
	}
	inOrNotIn := func(what string) error {
		if m.Op != OpEqual && m.Op != OpNotEqual {
			return fmt.Errorf("%s: operator %d, want In or NotIn", what, m.Op)
		}
		return nil
	}
	switch m.Kind {
	case MatchArg:
		if m.Arg < 0 || m.Arg >= len(args) {
			return nil, fmt.Errorf("matchArgs on undeclared argument %d", m.Arg)
		}
		cm.Arg = uint8(m.Arg)
		a := args[m.Arg]
		if m.Op >= OpSAddr && m.Op <= OpState {
			if !SockSource(a.Source) {
				return nil, fmt.Errorf("matchArgs: socket operator %d on argument %d, which is not a sock, socket or sockaddr", m.Op, m.Arg)
			}
			if m.Op <= OpNotDAddr {
				return addrKeys(slot, m.Prefixes)
			}
			return nil, ints("matchArgs")
		}
		switch m.Op {
		case OpInRange, OpNotInRange:
			if a.Kind != KindInt || len(m.Ints)%2 != 0 {
				return nil, fmt.Errorf("matchArgs: range operator %d on argument %d of kind %d with %d bounds, want an integer and (lo, hi) pairs", m.Op, m.Arg, a.Kind, len(m.Ints))
			}
			return nil, ints("matchArgs")
		case OpFileType, OpNotFileType:
			if a.Kind == KindInt || SockSource(a.Source) {
				return nil, fmt.Errorf("matchArgs: file type operator %d on argument %d, which is not a file", m.Op, m.Arg)
			}
			return nil, ints("matchArgs")
		case OpSubString, OpSubStringIgnCase:
			if a.Kind == KindInt || SockSource(a.Source) {
				return nil, fmt.Errorf("matchArgs: substring operator %d on argument %d, which is not a string", m.Op, m.Arg)
			}
			for _, v := range m.Strings {
				if v == "" {
					return nil, fmt.Errorf("matchArgs: empty substring")
				}
				if m.Op == OpSubStringIgnCase && v != ASCIILower(v) {
					return nil, fmt.Errorf("matchArgs: SubStringIgnCase value %q is not lower-case", v)
				}
			}
			return lpmKeys(slot, m.Strings, m.Op)
		}
		if a.Kind == KindInt {
			return nil, ints("matchArgs")
		}
		return lpmKeys(slot, m.Strings, m.Op)
	case MatchReturn:
		if m.Size != 0 && m.Size != 1 && m.Size != 2 && m.Size != 4 && m.Size != 8 {
			return nil, fmt.Errorf("matchReturnArgs: return value of %d bytes", m.Size)
		}
		cm.Size = m.Size % 8
		if m.Signed {
			cm.Flags |= mfSigned
		}
		return nil, ints("matchReturnArgs")
	case MatchPID:
		if m.NamespacePID {
			cm.Flags |= mfNsPID
		}
		if err := inOrNotIn("matchPIDs"); err != nil {
			return nil, err
		}
		return nil, ints("matchPIDs")
	case MatchNamespace:
		if m.Arg < 0 || m.Arg >= int(nsKinds) {
			return nil, fmt.Errorf("matchNamespaces: namespace kind %d", m.Arg)
		}
		cm.Arg = uint8(m.Arg)
		if err := inOrNotIn("matchNamespaces"); err != nil {
			return nil, err
		}
		return nil, ints("matchNamespaces")
	case MatchCaps:
		if m.Arg < 0 || m.Arg >= int(capSets) || len(m.Ints) != 1 {
			return nil, fmt.Errorf("matchCapabilities: capability set %d with %d masks, want one", m.Arg, len(m.Ints))
		}
		if err := inOrNotIn("matchCapabilities"); err != nil {
			return nil, err
		}
		cm.Arg, cm.Nvals, cm.Vals[0] = uint8(m.Arg), 1, m.Ints[0]
		if m.HostUserNS != 0 {
			cm.Flags |= mfNsCap
			cm.Vals[1] = int64(m.HostUserNS)
		}
		return nil, nil
	case MatchBinary:
		if m.Parent {
			cm.Flags |= mfParent
		}
		return lpmKeys(slot, m.Strings, m.Op)
	case MatchCapChange:
		if m.Arg < 0 || m.Arg >= int(capSets) || len(m.Ints) != 1 || m.Ints[0] == 0 {
			return nil, fmt.Errorf("matchCapabilityChanges: capability set %d with %d masks, want one that is not empty", m.Arg, len(m.Ints))
		}
		if err := inOrNotIn("matchCapabilityChanges"); err != nil {
			return nil, err
		}
		cm.Arg, cm.Nvals, cm.Vals[0] = uint8(m.Arg), 1, m.Ints[0]
		if m.HostUserNS != 0 {
			cm.Flags |= mfNsCap
			cm.Vals[1] = int64(m.HostUserNS)
		}
		return nil, nil
	case MatchNsChange:
		if len(m.Ints) != 1 || m.Ints[0] == 0 || m.Ints[0]>>nsKinds != 0 {
			return nil, fmt.Errorf("matchNamespaceChanges: %d namespace masks (%#x), want one of namespace kinds", len(m.Ints), m.Ints)
		}
		if err := inOrNotIn("matchNamespaceChanges"); err != nil {
			return nil, err
		}
		cm.Nvals, cm.Vals[0] = 1, m.Ints[0]
		return nil, nil
	}
	return nil, fmt.Errorf("unknown filter kind %d", m.Kind)
}

// ASCIILower lower-cases ASCII letters only, as the kernel side of
// SubStringIgnCase does (match_substr in bpf/lib/hook.h).
func ASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// matchArg holds the fields of struct match_arg (the generated type is
// an unnamed struct inside bpf.HookGenConf).
type matchArg struct {
	Arg   uint8
	Op    uint8
	Nvals uint8
	Kind  uint8
	Flags uint8
	Size  uint8
	Slot  uint16
	Vals  [8]int64
}

// SockRange encodes an inclusive range of a socket field's values as
// match_sock in bpf/lib/hook.h compares them: lo | hi << 32.
func SockRange(lo, hi uint32) int64 { return int64(uint64(lo) | uint64(hi)<<32) }

// addrKeys encodes CIDRs as LPM keys of match slot: after the slot, a
// family byte (ADDR_KEY_V4 or ADDR_KEY_V6 in bpf/lib/hook.h), then the
// address; the prefix covers the slot, the family and the CIDR's bits.
func addrKeys(slot uint16, prefixes []netip.Prefix) ([]bpf.HookLpmKey, error) {
	if len(prefixes) == 0 {
		return nil, fmt.Errorf("matchArgs: no addresses")
	}
	var keys []bpf.HookLpmKey
	for _, p := range prefixes {
		var k bpf.HookLpmKey
		k.Slot = slot
		a := p.Masked().Addr()
		if !p.IsValid() {
			return nil, fmt.Errorf("matchArgs: invalid CIDR")
		}
		if a.Is4() {
			k.Data[0] = 4
			b := a.As4()
			copy(k.Data[1:], b[:])
		} else {
			k.Data[0] = 6
			b := a.As16()
			copy(k.Data[1:], b[:])
		}
		k.Prefixlen = uint32(16 + 8 + p.Bits())
		keys = append(keys, k)
	}
	return keys, nil
}

func lpmKeys(slot uint16, strs []string, op Op) ([]bpf.HookLpmKey, error) {
	var keys []bpf.HookLpmKey
	for _, v := range strs {
		k, err := lpmKey(slot, v, op)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// cacheable reports whether a hook's verdict depends only on the file a
// syscall variant acts on and its access mask, so that the kernel may
// remember files that matched no selector. Every selector entry must
// match an argument that is the variant's file or mask: the file behind
// the returned fd counts when every variant's fd is the returned one.
// Entries on anything else about the call or the caller make this false.
func cacheable(spec HookSpec) bool {
	// a scoped hook's "no match" depends on the caller's cgroup, not only
	// on the file
	if len(spec.Selectors) == 0 || spec.Scoped {
		return false
	}
	retFile := len(spec.Syscalls) > 0
	for _, sc := range spec.Syscalls {
		for _, v := range sc.Variants {
			retFile = retFile && v.FD == VarFDRet
		}
	}
	for _, s := range spec.Selectors {
		for _, m := range s.Matches {
			if m.Kind != MatchArg || m.Arg < 0 || m.Arg >= len(spec.Args) {
				return false
			}
			switch spec.Args[m.Arg].Source {
			case SrcVarFile, SrcVarMask:
			case SrcRetFile:
				if !retFile {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// lpmKey encodes a match string the way match_str in bpf/dispatch.c looks it
// up. Whole-string matches keep the NUL, so they only match a looked-up
// string that ends there too; Postfix values are stored reversed.
func lpmKey(slot uint16, s string, op Op) (bpf.HookLpmKey, error) {
	var k bpf.HookLpmKey
	if len(s) > MaxMatchString {
		return k, fmt.Errorf("value %.40q... is %d bytes, at most %d can be matched in the kernel", s, len(s), MaxMatchString)
	}
	k.Slot = slot
	n := len(s)
	switch op {
	case OpPostfix, OpNotPostfix:
		for i := range n {
			k.Data[i] = s[n-1-i]
		}
	case OpEqual, OpNotEqual:
		copy(k.Data[:], s)
		n++ // the NUL, already zero
	default:
		copy(k.Data[:], s)
	}
	k.Prefixlen = uint32(16 + 8*n)
	return k, nil
}

// readGenericStats sums the per-CPU counters (enum gen_stat in
// bpf/lib/hook.h) of the hook whose counters start at index base.
func readGenericStats(stats *ebpf.Map, base uint32) (GenericStats, error) {
	var s GenericStats
	for idx, dst := range []*uint64{&s.Calls, &s.Matched, &s.Posted, &s.Drops, &s.Signals, &s.Cached} {
		n, err := sumPerCPU(stats, base+uint32(idx))
		if err != nil {
			return GenericStats{}, fmt.Errorf("reading hook stats[%d]: %w", base+uint32(idx), err)
		}
		*dst = n
	}
	return s, nil
}

// sumPerCPU sums entry idx of a per-CPU array of counters.
func sumPerCPU(m *ebpf.Map, idx uint32) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(idx, &perCPU); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}
