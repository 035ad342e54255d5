package compiler

import (
	"cmp"
	"fmt"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"os"
	"slices"
	"syscall"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// Decl is one hook of a policy (a kprobes:, tracepoints:, uprobes: or
// lsmhooks: entry, one per symbol for uprobes), as the policy states it.
type Decl struct {
	// Kind is the list the hook comes from; "" is hookevent.KindKprobe.
	Kind   hookevent.Kind
	Policy string
	// Call is the kernel function (kprobes), the LSM hook (lsmhooks) or
	// the symbol (uprobes).
	Call    string
	Syscall bool
	Return  bool
	// Fentry: a kprobe spec from spec.fentries, served by an fentry
	// program (fexit for Return) rather than a kprobe. Its events are
	// process_kprobe events, as for kprobes.
	Fentry bool
	// ReturnType is returnArg's type ("" without returnArg): the event
	// reports the return value as that type, as Tetragon does.
	ReturnType tracingpolicy.ArgType
	// ReturnArgAction is returnArgAction: "", "Post", "TrackSock" or
	// "UntrackSock" (kprobes with a return probe only).
	ReturnArgAction string
	// Subsystem and Raw: a tracepoint's group (Call is its event), and
	// whether it is read as a raw tracepoint.
	Subsystem string
	Raw       bool
	// Path is a uprobe's (or USDT's) executable; Offset, when not zero,
	// the probed file offset (Call then names it for messages).
	Path string
	// Provider is a USDT probe's provider (Call is its name).
	Provider string
	Offset   uint64
	// Args and Selectors are as parsed (typed, their values parsed and
	// checked once, by the parser); a policy in monitor mode has no
	// enforcing actions, and InMap filters are ranges with their lists'
	// system call numbers (policy.go).
	Args []tracingpolicy.ArgSpec
	// Data are a kprobe's data: entries (source current_task), read
	// after Args into the record slots that follow theirs (data.go).
	Data      []tracingpolicy.ArgSpec
	Selectors []tracingpolicy.Selector
	Message   string
	Tags      []string
	// Mechanism is the policy's hook-mechanism option: "" or "auto" lets
	// the kernel's features decide, MechKprobe or MechSyscallTracepoint
	// forces one.
	Mechanism string
	// Src locates the hook in its policy file, for errors; zero for hooks
	// not read from a file.
	Src tracingpolicy.Source
	// List is set for a kprobe whose call is "list:NAME" (Call): the
	// caller expands it (ExpandLists) into one hook per function, or, for a
	// list of system calls served by the syscall-tracepoint mapping, into
	// one hook whose table holds every listed system call.
	List ListDecl
	// Scope limits the hook to the containers of some pods (a policy's
	// namespace, podSelector and containerSelector); nil: every process.
	Scope *Scope
}

// Mechanism names reported in events and listings.
const (
	MechSyscallTracepoint = "syscall-tracepoint"
	MechKprobe            = "kprobe"
	// MechFmodRet serves hooks with an Override selector where the kernel
	// has fmod_ret but no bpf_override_return.
	MechFmodRet       = "fmod_ret"
	MechLSM           = "lsm"
	MechFentry        = "fentry"
	MechFexit         = "fexit"
	MechTracepoint    = "tracepoint"
	MechRawTracepoint = "raw_tracepoint"
	MechUprobe        = "uprobe"
)

// hookInfo is what a compiled hook carries besides its kernel spec: its
// declaration, and what its records' events need.
type hookInfo struct {
	decl  Decl
	event hookevent.Hook
}

// newInfo starts the hookInfo of d, served by mechanism mech.
func newInfo(d Decl, mech string) hookInfo {
	return hookInfo{decl: d, event: hookevent.Hook{
		Kind: cmp.Or(d.Kind, hookevent.KindKprobe), Policy: d.Policy, Call: d.Call, Subsystem: d.Subsystem, Path: d.Path, Provider: d.Provider,
		Message: d.Message, Tags: d.Tags, Mechanism: mech,
		Return: d.Return, ReturnType: d.ReturnType, ReturnArgAction: d.ReturnArgAction,
		Actions: selectorActions(d),
	}}
}

// selectorActions lists the actions of each of d's selectors.
func selectorActions(d Decl) [][]tracingpolicy.ActionSelector {
	out := make([][]tracingpolicy.ActionSelector, len(d.Selectors))
	for i, s := range d.Selectors {
		out[i] = s.MatchActions
	}
	return out
}

// isNop reports whether a is a nop argument: a placeholder that is
// declared but not read, so it takes no record slot and the event has no
// value for it (as in Tetragon, whose events leave nop arguments out).
// Matching on it is refused when the policy is parsed.
func isNop(a tracingpolicy.ArgSpec) bool { return a.Type == tracingpolicy.TypeNop }

func isPathType(t tracingpolicy.ArgType) bool {
	switch t {
	case tracingpolicy.TypeFile, tracingpolicy.TypePath, tracingpolicy.TypeDentry, tracingpolicy.TypeFd,
		tracingpolicy.TypeFilename, tracingpolicy.TypeString, tracingpolicy.TypeCharBuf:
		return true
	}
	return false
}

// compileSyscallMapping compiles a hook for the syscall-tracepoint
// mechanism; why says why that mechanism serves it, for errors.
func compileSyscallMapping(d Decl, id uint32, why string) (sensor.HookSpec, hookInfo, error) {
	spec := sensor.HookSpec{ID: id}
	info := newInfo(d, MechSyscallTracepoint)
	if d.ReturnArgAction == tracingpolicy.ReturnArgTrackSock || d.ReturnArgAction == tracingpolicy.ReturnArgUntrackSock {
		return spec, info, fmt.Errorf("%s: returnArgAction %s needs kprobes (a socket returned by a kernel function), and the syscall-tracepoint mechanism serves this hook because %s", d.Call, d.ReturnArgAction, why)
	}
	if len(d.Data) > 0 {
		return spec, info, fmt.Errorf("%s: data: entries read the current task from a kernel function's probe, which the syscall-tracepoint mechanism does not have; it serves this hook because %s", d.Call, why)
	}
	for _, a := range d.Args {
		if a.Resolve != "" {
			return spec, info, fmt.Errorf("%s: argument %d: resolve follows the parameter's BTF type from a kernel function, which the syscall-tracepoint mechanism does not call; it serves this hook because %s", d.Call, a.Index, why)
		}
	}
	var sources []sensor.Arg // by function argument index
	var err error
	name := tracingpolicy.SyscallName(d.Call)
	nr, isSyscall := syscallNumbers()[name]
	if d.List.Name != "" || isSyscall {
		flags := uint8(sensor.OnEnter)
		if d.Return || returnCopies(d) {
			flags = sensor.OnExit
		}
		spec.Syscalls = map[uint32]sensor.Syscall{nr: {Flags: flags, Variants: []sensor.Variant{{FD: sensor.VarFDRet}}}}
		if d.List.Name != "" {
			// a list of system calls: one table entry each (lists.go)
			if spec.Syscalls, info.event.Funcs, err = listTable(d, flags); err != nil {
				return spec, info, err
			}
		}
		for i := 0; i < 6; i++ {
			sources = append(sources, sensor.Arg{Source: sensor.SrcReg, Reg: uint8(i), Kind: sensor.KindInt})
		}
		for _, a := range d.Args {
			if a.Index > 5 {
				return spec, info, fmt.Errorf("%s: argument index %d out of range 0..5", d.Call, a.Index)
			}
			switch {
			case a.Type.PlainInt(), a.Type == tracingpolicy.TypeNop:
			case a.Type == "string" || a.Type == "filename":
				sources[a.Index] = sensor.Arg{Source: sensor.SrcRegUstr, Reg: uint8(a.Index), Kind: sensor.KindPath}
			case a.Type == "fd":
				sources[a.Index] = sensor.Arg{Source: sensor.SrcRegFile, Reg: uint8(a.Index), Kind: sensor.KindFD}
			case a.Type == "sockaddr":
				// connect, bind, sendto...: the caller's socket address
				sources[a.Index] = sensor.Arg{Source: sensor.SrcRegSockaddr, Reg: uint8(a.Index), Kind: sensor.KindPath}
			case a.Type == tracingpolicy.TypeInt32Arr:
				sources[a.Index] = int32ArrSource(a)
			case a.Type == tracingpolicy.TypeSyscall64:
				return spec, info, fmt.Errorf("%s: %w", d.Call, errSyscall64(a))
			default:
				return spec, info, fmt.Errorf("%s: argument %d: type %q is not supported on syscall hooks by the syscall-tracepoint mechanism (supported: int types, string, filename, fd, sockaddr, int32_arr)", d.Call, a.Index, a.Type)
			}
		}
	} else {
		m, ok := syscallMapping(d.Call)
		if !ok {
			return spec, info, fmt.Errorf("%s: %s, and %s has no syscall-tracepoint mapping (mapped: fd_install, security_file_open, security_file_permission, security_mmap_file, security_path_truncate, security_file_truncate and syscalls)", d.Call, why, d.Call)
		}
		spec.Syscalls = m.syscalls
		if d.Return {
			if err := checkMappedReturn(d, m); err != nil {
				return spec, info, err
			}
			spec.Syscalls = m.returnTable()
			// a void function has no return value to report
			info.event.NoReturn = m.void
		}
		sources = m.args
		for _, a := range d.Args {
			if int(a.Index) >= len(sources) {
				return spec, info, fmt.Errorf("%s: argument index %d: the function has %d arguments", d.Call, a.Index, len(sources))
			}
			if isNop(a) {
				continue
			}
			if a.Type == tracingpolicy.TypeSyscall64 {
				return spec, info, fmt.Errorf("%s: %w", d.Call, errSyscall64(a))
			}
			src := sources[a.Index]
			if src.Kind == sensor.KindInt && !a.Type.PlainInt() || src.Kind != sensor.KindInt && !isPathType(a.Type) {
				return spec, info, fmt.Errorf("%s: argument %d is declared %q, which does not fit the function's parameter", d.Call, a.Index, a.Type)
			}
		}
	}

	// record slots: the declared args, in declaration order; a nop
	// argument takes none
	slot := map[uint32]int{}
	declared := map[uint32]bool{}
	for _, a := range d.Args {
		if declared[a.Index] {
			return spec, info, fmt.Errorf("%s: argument index %d declared twice", d.Call, a.Index)
		}
		declared[a.Index] = true
		if isNop(a) {
			continue
		}
		slot[a.Index] = len(spec.Args)
		spec.Args = append(spec.Args, sources[a.Index])
		info.event.Args = append(info.event.Args, a)
	}
	if len(spec.Args) > sensor.MaxArgs {
		return spec, info, fmt.Errorf("%s: %d arguments, at most %d", d.Call, len(spec.Args), sensor.MaxArgs)
	}

	noOverride := fmt.Errorf("action Override needs bpf_override_return, fmod_ret or BPF LSM, which the syscall-tracepoint mechanism does not have; it serves this hook because %s", why)
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot, noOverride)
	for si, s := range spec.Selectors {
		if s.Actions&(sensor.ActKernelStack|sensor.ActUserStack) != 0 {
			return spec, info, fmt.Errorf("%s: selectors[%d]: kernelStackTrace and userStackTrace need kprobes (the syscall-tracepoint mechanism's stacks would be the tracepoint's, not the function's), and the syscall-tracepoint mechanism serves this hook because %s", d.Call, si, why)
		}
	}
	return spec, info, err
}

// checkMappedReturn refuses what a return probe through the mapping asks
// for and cannot be told at the syscall's exit: a return value of a void
// function, and a matchReturnArgs entry that holds for none of the values
// the mapping reports (the calls it would match are the ones the mapping
// cannot see, so it would silently never match).
func checkMappedReturn(d Decl, m funcMapping) error {
	if m.void && d.ReturnType != "" {
		return fmt.Errorf("%s: returnArg: %s returns void, so there is no return value to report", d.Call, d.Call)
	}
	for si, s := range d.Selectors {
		for _, rm := range s.MatchReturnArgs {
			if m.void {
				return fmt.Errorf("%s: selectors[%d]: matchReturnArgs: %s returns void, so there is no return value to match", d.Call, si, d.Call)
			}
			cm, err := compileReturnMatch(d, rm)
			if err != nil {
				return fmt.Errorf("%s: selectors[%d]: matchReturnArgs: %w", d.Call, si, err)
			}
			vals := m.returnValues()
			if !slices.ContainsFunc(vals, func(v int64) bool { return returnHolds(cm, v) }) {
				return fmt.Errorf("%s: selectors[%d]: matchReturnArgs %s %v holds for none of the return values the syscall-tracepoint mapping can report for %s (%v): %s", d.Call, si, rm.Operator, rm.Values, d.Call, vals, m.failures)
			}
		}
	}
	return nil
}

// returnHolds evaluates a compiled matchReturnArgs entry on v as the kernel
// does (ret_value and match_int in bpf/lib/hook.h).
func returnHolds(cm sensor.Match, v int64) bool {
	switch cm.Size {
	case 1:
		v = narrow(v, 8, cm.Signed)
	case 2:
		v = narrow(v, 16, cm.Signed)
	case 4:
		v = narrow(v, 32, cm.Signed)
	}
	hit := false
	for _, x := range cm.Ints {
		switch cm.Op {
		case sensor.OpEqual, sensor.OpNotEqual:
			hit = hit || v == x
		case sensor.OpMask:
			hit = hit || v&x != 0
		case sensor.OpGT:
			hit = hit || v > x
		case sensor.OpLT:
			hit = hit || v < x
		}
	}
	if cm.Op == sensor.OpInRange || cm.Op == sensor.OpNotInRange {
		hit = inRanges(v, cm.Ints)
	}
	if cm.Op == sensor.OpNotEqual || cm.Op == sensor.OpNotInRange {
		return !hit
	}
	return hit
}

// inRanges evaluates (lo, hi) pairs as match_int in bpf/lib/hook.h does:
// v - lo <= hi - lo, unsigned, whatever the type's signedness.
func inRanges(v int64, pairs []int64) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if uint64(v-pairs[i]) <= uint64(pairs[i+1]-pairs[i]) {
			return true
		}
	}
	return false
}

func narrow(v int64, bits uint, signed bool) int64 {
	shift := 64 - bits
	if signed {
		return v << shift >> shift
	}
	return int64(uint64(v) << shift >> shift)
}

// compileSelectors compiles a hook's selectors over its compiled args;
// slot maps a declared argument index to its record slot. overrideErr says
// why the mechanism cannot serve Override, nil when it can.
func compileSelectors(d Decl, args []sensor.Arg, slot map[uint32]int, overrideErr error) ([]sensor.Selector, []hookevent.RateLimit, error) {
	var sels []sensor.Selector
	var limits []hookevent.RateLimit
	for si, s := range d.Selectors {
		sel := sensor.Selector{}
		var err error
		sel.Matches, err = compileFilters(d, s, args, slot)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: selectors[%d]: %w", d.Call, si, err)
		}
		sel.Actions, sel.Signal, sel.Error, err = compileActions(s.MatchActions, overrideErr)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: selectors[%d]: %w", d.Call, si, err)
		}
		if sel.SockArg, err = sockActionArg(s.MatchActions, args, slot); err != nil {
			return nil, nil, fmt.Errorf("%s: selectors[%d]: %w", d.Call, si, err)
		}
		var rl hookevent.RateLimit
		for _, a := range s.MatchActions {
			if a.RateLimit > 0 {
				rl = hookevent.RateLimit{Period: a.RateLimit, Scope: a.RateLimitScope}
			}
		}
		limits = append(limits, rl)
		sels = append(sels, sel)
	}
	return sels, limits, nil
}

// compileFilters compiles the filters of one selector into the kernel's
// filter entries, cheapest first: the kernel evaluates them in order and
// stops at the first that does not hold, so a call that fails on an
// integer is never made to resolve an executable's path.
func compileFilters(d Decl, s tracingpolicy.Selector, args []sensor.Arg, slot map[uint32]int) ([]sensor.Match, error) {
	var out []sensor.Match
	for _, m := range s.MatchReturnArgs {
		cm, err := compileReturnMatch(d, m)
		if err != nil {
			return nil, fmt.Errorf("matchReturnArgs: %w", err)
		}
		out = append(out, cm)
	}
	for _, m := range s.MatchArgs {
		i, ok := slot[m.Index]
		if !ok {
			return nil, fmt.Errorf("matchArgs index %d is not a declared argument", m.Index)
		}
		cm, err := compileMatch(args[i], i, m)
		if err != nil {
			return nil, err
		}
		out = append(out, cm)
	}
	if len(s.MatchData) > 0 {
		ms, err := compileDataMatches(d, s.MatchData, args)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	for _, n := range s.MatchNamespaces {
		cm, err := compileNamespace(n)
		if err != nil {
			return nil, fmt.Errorf("matchNamespaces: %w", err)
		}
		out = append(out, cm)
	}
	for _, c := range s.MatchCapabilities {
		cm, err := compileCapabilities(c)
		if err != nil {
			return nil, fmt.Errorf("matchCapabilities: %w", err)
		}
		out = append(out, cm)
	}
	changes, err := compileChanges(s)
	if err != nil {
		return nil, err
	}
	out = append(out, changes...)
	// the ancestor walks last among the pid entries
	pids := slices.Clone(s.MatchPIDs)
	slices.SortStableFunc(pids, func(a, b tracingpolicy.PIDSelector) int { return cmpBool(a.FollowForks, b.FollowForks) })
	for _, p := range pids {
		cm, err := compilePIDs(p)
		if err != nil {
			return nil, fmt.Errorf("matchPIDs: %w", err)
		}
		out = append(out, cm)
	}
	for _, b := range s.MatchBinaries {
		cm, err := compileBinaries(b)
		if err != nil {
			return nil, fmt.Errorf("matchBinaries: %w", err)
		}
		out = append(out, cm)
	}
	for _, b := range s.MatchParentBinaries {
		cm, err := compileBinaries(b)
		if err != nil {
			return nil, fmt.Errorf("matchParentBinaries: %w", err)
		}
		cm.Parent = true
		out = append(out, cm)
	}
	if len(out) > sensor.MaxMatchArgs {
		return nil, fmt.Errorf("%d filter entries (matchArgs, matchReturnArgs, matchPIDs, matchBinaries, matchParentBinaries, matchNamespaces and matchCapabilities together), at most %d", len(out), sensor.MaxMatchArgs)
	}
	return out, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// setOp compiles In and NotIn.
func setOp(op tracingpolicy.SetOperator) (sensor.Op, error) {
	switch op {
	case tracingpolicy.OpIn:
		return sensor.OpEqual, nil
	case tracingpolicy.OpNotIn:
		return sensor.OpNotEqual, nil
	}
	return 0, fmt.Errorf("operator %q is not supported (supported: In, NotIn)", op)
}

func checkValues(n int) error {
	if n == 0 {
		return fmt.Errorf("no values")
	}
	if n > sensor.MaxIntValues {
		return fmt.Errorf("%d values, at most %d in the kernel", n, sensor.MaxIntValues)
	}
	return nil
}

// compileReturnMatch compiles a matchReturnArgs entry: an integer
// operator on the return value, read at the width returnArg declares.
func compileReturnMatch(d Decl, m tracingpolicy.ArgSelector) (sensor.Match, error) {
	if !d.Return {
		return sensor.Match{}, fmt.Errorf("the hook has no return value to match (it needs return: true)")
	}
	if !m.ArgType.PlainInt() {
		return sensor.Match{}, fmt.Errorf("the return value is declared %q; only integer return values can be matched in the kernel", m.ArgType)
	}
	cm, err := compileMatch(sensor.Arg{Kind: sensor.KindInt}, 0, m)
	if err != nil {
		return cm, err
	}
	t := m.ArgType
	cm.Kind, cm.Arg, cm.Size, cm.Signed = sensor.MatchReturn, 0, uint8(t.Size()), t.Signed()
	if cm.Size == 8 {
		cm.Size = 0 // the whole value
	}
	return cm, nil
}

// compilePIDs compiles a matchPIDs entry: the process id (tgid), or with
// isNamespacePID the id the process has in its own pid namespace; with
// followForks the process or any ancestor (see MAX_ANCESTORS in
// bpf/lib/hook.h).
func compilePIDs(p tracingpolicy.PIDSelector) (sensor.Match, error) {
	op, err := setOp(p.Operator)
	if err != nil {
		return sensor.Match{}, err
	}
	if err := checkValues(len(p.Values)); err != nil {
		return sensor.Match{}, err
	}
	cm := sensor.Match{Kind: sensor.MatchPID, Op: op, Follow: p.FollowForks, NamespacePID: p.IsNamespacePID}
	for _, v := range p.Values {
		cm.Ints = append(cm.Ints, int64(v))
	}
	return cm, nil
}

// binaryOp maps a matchBinaries operator to the string operator the
// kernel shares with matchArgs.
func binaryOp(op tracingpolicy.BinaryOperator) (sensor.Op, bool) {
	switch op {
	case tracingpolicy.BinIn:
		return sensor.OpEqual, true
	case tracingpolicy.BinNotIn:
		return sensor.OpNotEqual, true
	case tracingpolicy.BinPrefix:
		return sensor.OpPrefix, true
	case tracingpolicy.BinNotPrefix:
		return sensor.OpNotPrefix, true
	case tracingpolicy.BinPostfix:
		return sensor.OpPostfix, true
	case tracingpolicy.BinNotPostfix:
		return sensor.OpNotPostfix, true
	}
	return 0, false
}

// compileBinaries compiles a matchBinaries entry on the path of the
// process's executable; with followChildren a descendant of a matching
// process matches too.
func compileBinaries(b tracingpolicy.BinarySelector) (sensor.Match, error) {
	op, ok := binaryOp(b.Operator)
	if !ok {
		return sensor.Match{}, fmt.Errorf("operator %q is not supported (supported: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix)", b.Operator)
	}
	if len(b.Values) == 0 {
		return sensor.Match{}, fmt.Errorf("no values")
	}
	for _, v := range b.Values {
		if len(v) > sensor.MaxMatchString {
			return sensor.Match{}, fmt.Errorf("binary %.40q... is %d bytes, at most %d can be matched in the kernel", v, len(v), sensor.MaxMatchString)
		}
	}
	return sensor.Match{Kind: sensor.MatchBinary, Op: op, Strings: b.Values, Follow: b.FollowChildren}, nil
}

// nsKind maps a matchNamespaces namespace to the kernel's kind and its
// /proc/<pid>/ns entry.
func nsKind(ns tracingpolicy.NamespaceType) (kind sensor.NsKind, proc string, ok bool) {
	switch ns {
	case tracingpolicy.NsUts:
		return sensor.NsUts, "uts", true
	case tracingpolicy.NsIpc:
		return sensor.NsIpc, "ipc", true
	case tracingpolicy.NsMnt:
		return sensor.NsMnt, "mnt", true
	case tracingpolicy.NsPid:
		return sensor.NsPid, "pid", true
	case tracingpolicy.NsPidForChildren:
		return sensor.NsPidForChildren, "pid_for_children", true
	case tracingpolicy.NsNet:
		return sensor.NsNet, "net", true
	case tracingpolicy.NsTime:
		return sensor.NsTime, "time", true
	case tracingpolicy.NsTimeForChildren:
		return sensor.NsTimeForChildren, "time_for_children", true
	case tracingpolicy.NsCgroup:
		return sensor.NsCgroup, "cgroup", true
	case tracingpolicy.NsUser:
		return sensor.NsUser, "user", true
	}
	return 0, "", false
}

// hostNamespace returns the inode number of namespace proc (an entry of
// /proc/<pid>/ns) of the host: the agent runs in the host's pid namespace
// (--pid=host), so host_ns means pid 1's namespaces, as in Tetragon. Where
// pid 1 is protected from the agent (ptrace rules; this project's machines
// answer EACCES even to root), kthreadd (pid 2), which the kernel starts
// in the initial namespaces, is read instead: the process cache takes the
// host's namespaces from it for the same reason.
func hostNamespace(proc string) (uint32, error) {
	return hostNamespaceUnder("/proc", proc)
}

func hostNamespaceUnder(procRoot, proc string) (uint32, error) {
	fi, err := os.Stat(procRoot + "/1/ns/" + proc)
	if err != nil {
		var err2 error
		if fi, err2 = os.Stat(procRoot + "/2/ns/" + proc); err2 != nil {
			return 0, fmt.Errorf("reading the host's %s namespace: %w (and from kthreadd: %w)", proc, err, err2)
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("reading the host's %s namespace: no inode number", proc)
	}
	return uint32(st.Ino), nil
}

// compileNamespace compiles a matchNamespaces entry: the inode number of
// the calling task's namespace, In or NotIn the values.
func compileNamespace(n tracingpolicy.NamespaceSelector) (sensor.Match, error) {
	kind, proc, ok := nsKind(n.Namespace)
	if !ok {
		return sensor.Match{}, fmt.Errorf("namespace %q is not supported (supported: Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User)", n.Namespace)
	}
	op, err := setOp(n.Operator)
	if err != nil {
		return sensor.Match{}, err
	}
	cm := sensor.Match{Kind: sensor.MatchNamespace, Arg: int(kind), Op: op}
	for _, id := range n.IDs {
		cm.Ints = append(cm.Ints, int64(id))
	}
	if n.HostNS {
		id, err := hostNamespace(proc)
		if err != nil {
			return cm, fmt.Errorf("%s %s: %w", n.Namespace, tracingpolicy.HostNS, err)
		}
		cm.Ints = append(cm.Ints, int64(id))
	}
	return cm, checkValues(len(cm.Ints))
}

// compileCapabilities compiles a matchCapabilities entry: In holds when
// the set has any of the capabilities, NotIn when it has none. With
// isNamespaceCapability neither holds for a process in the host's user
// namespace, as in Tetragon.
func compileCapabilities(c tracingpolicy.CapabilitiesSelector) (sensor.Match, error) {
	var set sensor.CapSet
	switch c.Type {
	case tracingpolicy.CapEffective, "": // Tetragon's default
		set = sensor.CapsEffective
	case tracingpolicy.CapInheritable:
		set = sensor.CapsInheritable
	case tracingpolicy.CapPermitted:
		set = sensor.CapsPermitted
	default:
		return sensor.Match{}, fmt.Errorf("capability type %q is not supported (supported: Effective, Inheritable, Permitted)", c.Type)
	}
	op, err := setOp(c.Operator)
	if err != nil {
		return sensor.Match{}, err
	}
	if c.Mask == 0 {
		return sensor.Match{}, fmt.Errorf("no capabilities")
	}
	cm := sensor.Match{Kind: sensor.MatchCaps, Arg: int(set), Op: op, Ints: []int64{int64(c.Mask)}}
	if c.IsNamespaceCapability {
		id, err := hostNamespace("user")
		if err != nil {
			return cm, fmt.Errorf("isNamespaceCapability: %w", err)
		}
		cm.HostUserNS = id
	}
	return cm, nil
}

// matchOps maps the operators compileMatch compiles itself to the
// kernel's.
var matchOps = map[tracingpolicy.Operator]sensor.Op{
	tracingpolicy.OpEqual: sensor.OpEqual, tracingpolicy.OpNotEqual: sensor.OpNotEqual,
	tracingpolicy.OpPrefix: sensor.OpPrefix, tracingpolicy.OpNotPrefix: sensor.OpNotPrefix,
	tracingpolicy.OpPostfix: sensor.OpPostfix, tracingpolicy.OpNotPostfix: sensor.OpNotPostfix,
	// CapabilityMask's values are the capabilities' bits: Mask's test
	tracingpolicy.OpMask: sensor.OpMask, tracingpolicy.OpCapabilityMask: sensor.OpMask,
	tracingpolicy.OpGreaterThan: sensor.OpGT, tracingpolicy.OpLessThan: sensor.OpLT,
}

// compileMatch compiles a matchArgs (or matchReturnArgs) entry on the
// argument in record slot slot, from the values the parser parsed.
func compileMatch(arg sensor.Arg, slot int, m tracingpolicy.ArgSelector) (sensor.Match, error) {
	cm := sensor.Match{Arg: slot}
	if m.Operator.Socket() {
		return compileSockMatch(arg, slot, m)
	}
	if _, ok := valueOps[m.Operator]; ok {
		return compileValueMatch(arg, slot, m)
	}
	op, ok := matchOps[m.Operator]
	if !ok {
		return cm, fmt.Errorf("operator %q is not supported in the kernel (supported: Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, Mask, CapabilityMask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap, SubString, SubStringIgnCase, FileType, NotFileType, SAddr, NotSAddr, DAddr, NotDAddr, SPort, NotSPort, DPort, NotDPort, Protocol, Family, State)", m.Operator)
	}
	cm.Op = op
	isInt := arg.Kind == sensor.KindInt
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
	if !isInt {
		cm.Strings = m.Values
		return cm, nil
	}
	if len(m.IntValues) != len(m.Values) {
		// the parser fills IntValues for every integer filter
		return cm, fmt.Errorf("operator %s: the values %q were not parsed as integers of type %s", m.Operator, m.Values, m.ArgType)
	}
	cm.Ints = m.IntValues
	if len(cm.Ints) > sensor.MaxIntValues {
		return cm, fmt.Errorf("%d integer values, at most %d", len(cm.Ints), sensor.MaxIntValues)
	}
	return cm, nil
}

// compileActions returns a selector's action flags, signal and Override
// error value. overrideErr is the error for Override where the mechanism
// cannot serve it, nil where it can.
func compileActions(acts []tracingpolicy.ActionSelector, overrideErr error) (flags, sig uint8, errno int32, err error) {
	if len(acts) == 0 {
		return sensor.ActPost, 0, 0, nil
	}
	post, remote := true, false
	for _, a := range acts {
		if a.KernelStackTrace {
			flags |= sensor.ActKernelStack
		}
		if a.UserStackTrace {
			flags |= sensor.ActUserStack
		}
		switch a.Action {
		case tracingpolicy.ActionPost:
		case tracingpolicy.ActionNoPost:
			post = false
		case tracingpolicy.ActionSigkill:
			flags |= sensor.ActSigkill
		case tracingpolicy.ActionSignal:
			if a.ArgSig == 0 || a.ArgSig > 64 {
				return 0, 0, 0, fmt.Errorf("action Signal needs argSig between 1 and 64, got %d", a.ArgSig)
			}
			flags |= sensor.ActSignal
			sig = uint8(a.ArgSig)
		case tracingpolicy.ActionSet, tracingpolicy.ActionRegs:
			// register writes, compiled by the uprobe and USDT hooks
			// (usdt.go); other mechanisms refuse them before
		case tracingpolicy.ActionTrackSock:
			flags |= sensor.ActTrackSock
		case tracingpolicy.ActionUntrackSock:
			flags |= sensor.ActUntrackSock
		case tracingpolicy.ActionGetURL, tracingpolicy.ActionDNSLookup:
			// done by the agent when the record arrives: the kernel
			// must send it even with NoPost (remoteactions.go)
			remote = true
		case tracingpolicy.ActionNotifyEnforcer:
			// acted on at the hook, which is the enforced call
			// (enforcers.go): argSig is Signal, argError Override
			if a.ArgSig > 64 {
				return 0, 0, 0, fmt.Errorf("action NotifyEnforcer needs argSig between 1 and 64, got %d", a.ArgSig)
			}
			if a.ArgSig != 0 {
				flags |= sensor.ActSignal
				sig = uint8(a.ArgSig)
			}
			if a.ArgError != 0 {
				if overrideErr != nil {
					return 0, 0, 0, fmt.Errorf("action NotifyEnforcer with argError: %w", overrideErr)
				}
				flags |= sensor.ActOverride
				errno = a.ArgError
			}
		case tracingpolicy.ActionOverride:
			if overrideErr != nil {
				return 0, 0, 0, overrideErr
			}
			flags |= sensor.ActOverride
			errno = a.ArgError
		default:
			return 0, 0, 0, fmt.Errorf("action %q is not supported", a.Action)
		}
	}
	if post || remote {
		flags |= sensor.ActPost
	}
	return flags, sig, errno, nil
}

// sockActionArg returns the record slot of the argument a TrackSock or
// UntrackSock action names (argSock), which must be a sock, socket or skb
// read by the mechanism; 0 when there is no such action.
func sockActionArg(acts []tracingpolicy.ActionSelector, args []sensor.Arg, slot map[uint32]int) (int, error) {
	for _, a := range acts {
		if a.Action != tracingpolicy.ActionTrackSock && a.Action != tracingpolicy.ActionUntrackSock {
			continue
		}
		if acts := countSockActions(acts); acts > 1 {
			return 0, fmt.Errorf("TrackSock and UntrackSock together in one selector: a selector tracks one socket")
		}
		i, ok := slot[a.ArgSock]
		if !ok {
			return 0, fmt.Errorf("action %s: argSock %d is not a declared argument", a.Action, a.ArgSock)
		}
		if src := args[i].Source; !sensor.SockSource(src) || src == sensor.SrcRegSockaddr {
			return 0, fmt.Errorf("action %s: argSock %d is not a sock, socket or skb argument read by this mechanism (socket tracking needs kprobes)", a.Action, a.ArgSock)
		}
		return i, nil
	}
	return 0, nil
}

func countSockActions(acts []tracingpolicy.ActionSelector) int {
	n := 0
	for _, a := range acts {
		if a.Action == tracingpolicy.ActionTrackSock || a.Action == tracingpolicy.ActionUntrackSock {
			n++
		}
	}
	return n
}

// hasOverride reports whether any selector of d overrides the return value.
func hasOverride(d Decl) bool {
	for _, s := range d.Selectors {
		for _, a := range s.MatchActions {
			// NotifyEnforcer's argError is an Override at the hook
			if a.Action == tracingpolicy.ActionOverride || a.Action == tracingpolicy.ActionNotifyEnforcer && a.ArgError != 0 {
				return true
			}
		}
	}
	return false
}
