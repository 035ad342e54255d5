package tracingpolicy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// API identity of the documents this package reads.
const (
	APIVersion                  = "cilium.io/v1alpha1"
	KindTracingPolicy           = "TracingPolicy"
	KindTracingPolicyNamespaced = "TracingPolicyNamespaced"
)

// Limits. A policy that exceeds one is rejected with an error naming it.
const (
	// MaxFileSize bounds a policy file. Parsing YAML costs roughly 100 bytes
	// of memory per byte of input in the worst case (measured: 10 MiB of flow
	// sequence took 1 GiB), so the bound is kept well below what a policy
	// with thousands of paths needs (a few hundred KiB).
	MaxFileSize = 1 << 20
	// MaxSelectors per hook, as in Tetragon.
	MaxSelectors = 5
	// MaxArgs is the number of arguments a hook may declare.
	MaxArgs = 5
	// MaxArgIndex is the highest function argument index (x86-64 and arm64
	// pass six arguments in registers).
	MaxArgIndex = 5
	// MaxTracepointArgIndex bounds a tracepoint field index.
	MaxTracepointArgIndex = 63
	// MaxFilters bounds the entries of each filter list of a selector
	// (matchArgs, matchPIDs, ...) and the actions of a selector.
	MaxFilters = 8
	// MaxValues bounds the values of one filter entry.
	MaxValues = 4096
	// MaxValueLen bounds one string value in bytes (PATH_MAX).
	MaxValueLen = 4096
	// MaxMessageLen bounds a hook's message, in characters, as in Tetragon.
	MaxMessageLen = 256
	// MaxTags bounds a hook's tags, as in Tetragon.
	MaxTags = 16
	// maxNodes bounds the YAML nodes visited per document, so anchors and
	// aliases cannot make the walk expand exponentially. A policy with
	// several hooks of 5 selectors holding thousands of paths stays far
	// below it.
	maxNodes = 1 << 18
)

// Source locates a parsed element in its policy file, so later stages
// (selector compilation, attaching) can report errors the same way the parser
// does.
type Source struct {
	File   string
	Line   int
	Column int
	// Path is the field path, e.g. spec.kprobes[0].selectors[1].
	Path string
}

func (s Source) String() string {
	return FieldError{File: s.File, Line: s.Line, Column: s.Column, Path: s.Path}.location()
}

// Errorf returns a FieldError located at s.
func (s Source) Errorf(format string, args ...any) FieldError {
	return FieldError{File: s.File, Line: s.Line, Column: s.Column, Path: s.Path, Msg: fmt.Sprintf(format, args...)}
}

// TracingPolicy is one TracingPolicy or TracingPolicyNamespaced document.
type TracingPolicy struct {
	APIVersion string
	Kind       string
	Metadata   Metadata
	Spec       Spec
	Src        Source
}

// Namespaced reports whether p is a TracingPolicyNamespaced.
func (p *TracingPolicy) Namespaced() bool { return p.Kind == KindTracingPolicyNamespaced }

// Enforces reports whether any selector of the policy acts on the process
// (Sigkill, Signal, Override). A policy that does not is what Tetragon
// lists as monitor_only.
func (p *TracingPolicy) Enforces() bool {
	var sels [][]Selector
	for _, k := range append(slices.Clip(p.Spec.KProbes), p.Spec.Fentries...) {
		sels = append(sels, k.Selectors)
	}
	for _, t := range p.Spec.Tracepoints {
		sels = append(sels, t.Selectors)
	}
	for _, l := range p.Spec.LsmHooks {
		sels = append(sels, l.Selectors)
	}
	for _, u := range p.Spec.UProbes {
		sels = append(sels, u.Selectors)
	}
	for _, u := range p.Spec.Usdts {
		sels = append(sels, u.Selectors)
	}
	for _, ss := range sels {
		for _, s := range ss {
			for _, a := range s.MatchActions {
				if a.Action.Enforces() {
					return true
				}
			}
		}
	}
	return false
}

// Metadata is the subset of Kubernetes ObjectMeta a policy uses. Other
// ObjectMeta fields (uid, resourceVersion, ...) are accepted and dropped, so
// that `kubectl get -o yaml` output loads.
type Metadata struct {
	// Name is a DNS-1123 subdomain.
	Name string
	// Namespace is set (a DNS-1123 label) exactly when the kind is
	// TracingPolicyNamespaced.
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
}

// Spec is a policy's specification.
type Spec struct {
	KProbes []KProbeSpec
	// Fentries are kprobe specs (Tetragon 1.6's spec.fentries) served by
	// fentry programs (fexit for return: true) instead of kprobes.
	Fentries    []KProbeSpec
	Tracepoints []TracepointSpec
	LsmHooks    []LsmHookSpec
	UProbes     []UProbeSpec
	Usdts       []UsdtSpec
	// Options as written. The known ones are policy-mode (also parsed into
	// Mode), hook-mechanism (into HookMechanism), disable-kprobe-multi and
	// disable-uprobe-multi; others are rejected.
	Options []OptionSpec
	// Mode is the policy-mode option: "" (not set: enforce), ModeEnforce or
	// ModeMonitor.
	Mode PolicyMode
	// HookMechanism is the hook-mechanism option: "" (not set: auto) or
	// one of the Mechanism* values.
	HookMechanism HookMechanism
	// PodSelector restricts the policy to pods with matching labels. Its
	// shape is validated; there are no pods without Kubernetes, so what it
	// means here is the caller's decision.
	PodSelector *LabelSelector
	// ContainerSelector restricts the policy to containers; as in Tetragon
	// the only key is "name" (the container name).
	ContainerSelector *LabelSelector
	// Lists are the spec.lists entries, named sets of functions a kprobe
	// names with call: "list:NAME".
	Lists []ListSpec
	// Enforcer is spec.enforcers' (spec.killers') entry, nil without.
	Enforcer *EnforcerSpec
	// Loader is spec.loader: process_loader events for the ELF files
	// processes map; LoaderSrc locates it, for the loader's refusals.
	Loader    bool
	LoaderSrc Source
}

// ListType is a spec.lists entry's type.
type ListType string

// List types, as in Tetragon. ListPlain (type not set) holds kernel
// function names; ListSyscalls system calls (sys_dup, __x64_sys_dup, ...);
// the generated ones are filled from the running kernel when the policy is
// loaded: every system call it has, or every function of tracefs
// available_filter_functions that Pattern (a regular expression) matches.
const (
	ListPlain             ListType = ""
	ListSyscalls          ListType = "syscalls"
	ListGeneratedSyscalls ListType = "generated_syscalls"
	ListGeneratedFtrace   ListType = "generated_ftrace"
)

// Syscalls reports whether the list holds system calls.
func (t ListType) Syscalls() bool { return t == ListSyscalls || t == ListGeneratedSyscalls }

// Generated reports whether the list is filled from the running kernel.
func (t ListType) Generated() bool { return t == ListGeneratedSyscalls || t == ListGeneratedFtrace }

// ListSpec is a spec.lists entry.
type ListSpec struct {
	Name string
	Type ListType
	// Values as written: function names, or for ListSyscalls system call
	// names in any form SyscallName accepts. Empty for generated lists.
	Values []string
	// Pattern is the regular expression of a ListGeneratedFtrace list.
	Pattern string
	Src     Source
}

// List returns the spec.lists entry named name.
func (s *Spec) List(name string) (ListSpec, bool) {
	for _, l := range s.Lists {
		if l.Name == name {
			return l, true
		}
	}
	return ListSpec{}, false
}

// Hooks returns the number of hooks the spec declares.
func (s *Spec) Hooks() int {
	return len(s.KProbes) + len(s.Fentries) + len(s.Tracepoints) + len(s.LsmHooks) + len(s.UProbes) + len(s.Usdts)
}

// PolicyMode is a policy's enforcement mode (option policy-mode).
type PolicyMode string

// Policy modes. In monitor mode the enforcement actions (Sigkill, Signal,
// Override) are not carried out; events still report them.
const (
	ModeEnforce PolicyMode = "enforce"
	ModeMonitor PolicyMode = "monitor"
)

// HookMechanism is how a policy's kprobes: hooks are served (option
// hook-mechanism, an option of this agent, not of Tetragon).
type HookMechanism string

// Hook mechanisms. Auto uses kprobes where the kernel has them and the
// syscall-tracepoint mapping elsewhere; the other two force one of them, so
// that both can be compared on one kernel.
const (
	MechanismAuto              HookMechanism = "auto"
	MechanismKprobe            HookMechanism = "kprobe"
	MechanismSyscallTracepoint HookMechanism = "syscall-tracepoint"
)

// OptionSpec is a spec.options entry.
type OptionSpec struct {
	Name  string
	Value string
	Src   Source
}

// LabelSelector is a Kubernetes label selector.
type LabelSelector struct {
	MatchLabels      map[string]string
	MatchExpressions []LabelSelectorRequirement
	Src              Source
}

// LabelSelectorRequirement is one matchExpressions entry.
type LabelSelectorRequirement struct {
	Key string
	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string
	Values   []string
}

// KProbeSpec is a spec.kprobes entry.
type KProbeSpec struct {
	// Call is the function, or "list:NAME" for every function of the
	// spec.lists entry List.
	Call string
	// List is the list's name when Call is "list:NAME"; Syscall is then
	// the list's kind (a syscalls or generated_syscalls list).
	List string
	// Syscall tells that Call is a system call (default true, as in
	// Tetragon's CRD). Call may then be written sys_openat or with an
	// architecture prefix (__x64_sys_openat).
	Syscall bool
	// Return asks for the return value (a kretprobe).
	Return bool
	Args   []ArgSpec
	// ReturnArg describes the return value; set only with Return.
	ReturnArg *ArgSpec
	// ReturnArgAction is "", ReturnArgPost, ReturnArgTrackSock or
	// ReturnArgUntrackSock.
	ReturnArgAction string
	// Data are the data: entries, values read from elsewhere than the
	// call's parameters (source current_task only: a resolve path from
	// the current task_struct). Their Index is their position in the
	// list, which matchData names (data.go).
	Data      []ArgSpec
	Selectors []Selector
	Message   string
	Tags      []string
	// IgnoreCallNotFound (ignore.callNotFound) skips the hook instead of
	// failing the policy when the kernel has no such function.
	IgnoreCallNotFound bool
	Src                Source
}

// ListPrefix starts a call naming a spec.lists entry.
const ListPrefix = "list:"

// The supported returnArgActions. TrackSock and UntrackSock act on the
// sock the function returns (returnArg of type sock), when a selector
// matched the call.
const (
	ReturnArgPost        = "Post"
	ReturnArgTrackSock   = "TrackSock"
	ReturnArgUntrackSock = "UntrackSock"
)

// SyscallName returns the system call name of a syscall kprobe ("openat" for
// sys_openat, __x64_sys_openat, __arm64_sys_openat, ...), or "" when the call
// is not written as a system call.
func (k *KProbeSpec) SyscallName() string { return SyscallName(k.Call) }

// SyscallName returns the system call a function name written as one
// names ("openat" for sys_openat, __x64_sys_openat, __se_sys_openat,
// __do_sys_openat, ...), or "" when the name is not written as a system
// call. ksys_ helpers are not system calls: one serves several (ksys_dup3
// serves dup2 and dup3), so a hook on one is a kernel function's.
func SyscallName(call string) string {
	for _, p := range []string{"__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_", "sys_"} {
		if rest, ok := strings.CutPrefix(call, p); ok && rest != "" {
			return rest
		}
	}
	return ""
}

// Arg returns the declared argument with function index i.
func (k *KProbeSpec) Arg(i uint32) (ArgSpec, bool) { return findArg(k.Args, i) }

func findArg(args []ArgSpec, i uint32) (ArgSpec, bool) {
	for _, a := range args {
		if a.Index == i {
			return a, true
		}
	}
	return ArgSpec{}, false
}

// TracepointSpec is a spec.tracepoints entry.
type TracepointSpec struct {
	Subsystem string
	Event     string
	// Raw selects the raw tracepoint: argument indexes are then the
	// tracepoint's TP_PROTO arguments rather than its format fields.
	Raw bool
	// Args index the tracepoint's format fields, counting the common_*
	// fields (so the first event field of most tracepoints is index 4), or,
	// with Raw, the TP_PROTO arguments.
	Args      []ArgSpec
	Selectors []Selector
	Message   string
	Tags      []string
	Src       Source
}

// Arg returns the declared argument with index i.
func (t *TracepointSpec) Arg(i uint32) (ArgSpec, bool) { return findArg(t.Args, i) }

// LsmHookSpec is a spec.lsmhooks entry.
type LsmHookSpec struct {
	// Hook is the LSM hook name without the security_ prefix (file_open).
	Hook      string
	Args      []ArgSpec
	Selectors []Selector
	Message   string
	Tags      []string
	Src       Source
}

// Arg returns the declared argument with index i.
func (l *LsmHookSpec) Arg(i uint32) (ArgSpec, bool) { return findArg(l.Args, i) }

// UProbeSpec is a spec.uprobes entry. Exactly one of Symbols and Offsets is
// set.
type UProbeSpec struct {
	// Path is the absolute path of the traced binary or library.
	Path    string
	Symbols []string
	// Offsets are file offsets of the probed instructions.
	Offsets []uint64
	// ResolvePathInContainer (Tetragon 1.6) reads Path in each container
	// the policy's podSelector selects, under its root file system; the
	// decision is the loader's (pkg/hooks), which refuses it.
	ResolvePathInContainer bool
	// ResolvePathSrc locates the field, for that refusal.
	ResolvePathSrc Source
	Return         bool
	ReturnArg      *ArgSpec
	Args           []ArgSpec
	Selectors      []Selector
	Message        string
	Tags           []string
	Src            Source
}

// Arg returns the declared argument with index i.
func (u *UProbeSpec) Arg(i uint32) (ArgSpec, bool) { return findArg(u.Args, i) }

// ArgSpec declares one argument (or the return value) of a hook.
type ArgSpec struct {
	// Index is the function argument position (0-based); for tracepoints the
	// format field index. Meaningless for a return argument.
	Index uint32
	Type  ArgType
	Label string
	// MaxData applies to char_buf and iov_iter, SizeArgIndex to char_buf
	// only, ReturnCopy to char_buf and int32_arr.
	MaxData    bool
	ReturnCopy bool
	// Size is an int32_arr's element count, 1..MaxInt32ArrSize.
	Size uint32
	// SizeArgIndex is, as in Tetragon, the index+1 of the argument holding
	// the buffer size; 0 means none.
	SizeArgIndex uint32
	// Resolve is a path of struct members followed from the argument
	// ("mm.owner.real_parent.comm"), as Tetragon's resolve: the argument
	// is then what the path ends at, read as Type. Checked against the
	// kernel's BTF when the hook is compiled.
	Resolve string
	Src     Source
	// TypeSrc locates the type field, where type mismatches are reported.
	TypeSrc Source
}

// ArgType is an argument type, by its Tetragon name. Aliases are
// canonicalised (sint32 -> int32, ...).
type ArgType string

// Supported argument types.
const (
	TypeInt    ArgType = "int"
	TypeInt8   ArgType = "int8"
	TypeUint8  ArgType = "uint8"
	TypeInt16  ArgType = "int16"
	TypeUint16 ArgType = "uint16"
	TypeInt32  ArgType = "int32"
	TypeUint32 ArgType = "uint32"
	TypeInt64  ArgType = "int64"
	TypeUint64 ArgType = "uint64"
	TypeLong   ArgType = "long"
	TypeUlong  ArgType = "ulong"
	TypeSizeT  ArgType = "size_t"

	TypeString   ArgType = "string"
	TypeCharBuf  ArgType = "char_buf"
	TypeFilename ArgType = "filename"

	TypeFd     ArgType = "fd"
	TypeFile   ArgType = "file"
	TypePath   ArgType = "path"
	TypeDentry ArgType = "dentry"

	TypeSock     ArgType = "sock"
	TypeSkb      ArgType = "skb"
	TypeSockaddr ArgType = "sockaddr"

	// TypeLinuxBinprm is a struct linux_binprm *: the path of the file
	// being executed, as Tetragon reports it.
	TypeLinuxBinprm ArgType = "linux_binprm"

	// TypeCred is a struct cred *: its ids and capabilities, reported as
	// Tetragon's process_credentials_arg.
	TypeCred ArgType = "cred"

	// TypeNetDevice is a struct net_device *: its name, reported and
	// matched as a string, as Tetragon does.
	TypeNetDevice ArgType = "net_device"

	// TypeKiocb is a struct kiocb *: the path of its file (ki_filp).
	TypeKiocb ArgType = "kiocb"

	// TypeSocket is a struct socket *: reported as its sock, as Tetragon
	// does.
	TypeSocket ArgType = "socket"

	// TypeUserNamespace is a struct user_namespace *: its level, owner,
	// group and inode number, reported as Tetragon's user_ns_arg.
	TypeUserNamespace ArgType = "user_namespace"
	// TypeBpfAttr is a union bpf_attr * of a BPF_PROG_LOAD (bpf_check):
	// the program's type, instruction count and name, as Tetragon reports
	// it; not matched.
	TypeBpfAttr ArgType = "bpf_attr"
	// TypeBpfMap is a struct bpf_map *: its type, key and value sizes,
	// maximum entries and name, as Tetragon's bpf_map_arg; not matched.
	TypeBpfMap ArgType = "bpf_map"
	// TypePerfEvent is a struct perf_event *: its type, config, probe
	// address and, for a kprobe, the function, as Tetragon's
	// perf_event_arg; not matched.
	TypePerfEvent ArgType = "perf_event"

	// TypeDns is a struct msghdr * of a UDP send (udp_sendmsg): the first
	// question of the DNS message its payload holds, matched as the name.
	TypeDns ArgType = "dns"

	TypeNop ArgType = "nop"

	// TypeSyscall64 is a system call number read from a tracepoint field
	// (raw_syscalls' id), with bit 31 set for a 32-bit (compat) call, as
	// Tetragon reads it; matched as a 64-bit unsigned integer.
	TypeSyscall64 ArgType = "syscall64"
)

// ArgClass groups argument types by what can be read and matched.
type ArgClass int

// Argument classes.
const (
	ClassNone   ArgClass = iota // nop: declared, not read
	ClassInt                    // integers: Equal, NotEqual, Mask, GreaterThan, LessThan
	ClassString                 // strings read from memory: Equal, NotEqual, [Not]Prefix, [Not]Postfix
	ClassPath                   // file paths resolved from kernel objects: as strings
	ClassSocket                 // sock, skb, sockaddr: the socket operators (sockops.go)
	ClassStruct                 // kernel structures reported whole (cred): output only
)

type typeInfo struct {
	class  ArgClass
	size   int // bytes, for integers
	signed bool
}

// lookupType returns what this agent knows of a supported type.
func lookupType(t ArgType) (typeInfo, bool) {
	switch t {
	case TypeInt, TypeInt32:
		return typeInfo{ClassInt, 4, true}, true
	case TypeUint32:
		return typeInfo{ClassInt, 4, false}, true
	case TypeInt8:
		return typeInfo{ClassInt, 1, true}, true
	case TypeUint8:
		return typeInfo{ClassInt, 1, false}, true
	case TypeInt16:
		return typeInfo{ClassInt, 2, true}, true
	case TypeUint16:
		return typeInfo{ClassInt, 2, false}, true
	case TypeInt64, TypeLong:
		return typeInfo{ClassInt, 8, true}, true
	case TypeUint64, TypeUlong, TypeSizeT, TypeSyscall64, TypeKernelCapT, TypeCapInheritable, TypeCapPermitted, TypeCapEffective:
		return typeInfo{ClassInt, 8, false}, true
	case TypeString, TypeCharBuf, TypeFilename, TypeNetDevice, TypeDns:
		return typeInfo{class: ClassString}, true
	case TypeFd, TypeFile, TypePath, TypeDentry, TypeLinuxBinprm, TypeKiocb:
		return typeInfo{class: ClassPath}, true
	case TypeSock, TypeSkb, TypeSockaddr, TypeSocket:
		return typeInfo{class: ClassSocket}, true
	case TypeCred, TypeUserNamespace, TypeBpfAttr, TypeBpfMap, TypePerfEvent, TypeInt32Arr, TypeModule, TypeIovIter:
		return typeInfo{class: ClassStruct}, true
	case TypeNop:
		return typeInfo{class: ClassNone}, true
	}
	return typeInfo{}, false
}

// canonicalType maps Tetragon's alternative spellings to canonical types.
func canonicalType(s string) ArgType {
	switch s {
	case "sint8":
		return TypeInt8
	case "sint16":
		return TypeInt16
	case "sint32":
		return TypeInt32
	case "sint64":
		return TypeInt64
	}
	return ArgType(s)
}

// unsupportedType reports Tetragon types this agent does not implement; they
// get a "not supported" error instead of "unknown type".
func unsupportedType(s string) bool {
	switch s {
	case "auto", "char_iovec", "capability",
		"const_buf", "load_info", "data_loc",
		"bpf_cmd", "bpf_prog":
		return true
	}
	return false
}

// supportedTypeNames lists the supported types for error messages.
const supportedTypeNames = "int, int8, uint8, int16, uint16, int32, uint32, int64, uint64, long, ulong, size_t, " +
	"string, char_buf, filename, fd, file, path, dentry, sock, skb, sockaddr, socket, linux_binprm, cred, net_device, kiocb, user_namespace, bpf_attr, bpf_map, perf_event, int32_arr, module, iov_iter, syscall64, kernel_cap_t, cap_inheritable, cap_permitted, cap_effective, dns, nop"

// Class returns the type's class.
func (t ArgType) Class() ArgClass { i, _ := lookupType(t); return i.class }

// PlainInt reports whether t is a plain integer, read and reported as its
// width and sign say: syscall64 and the capability sets are integers with
// their own reading and report.
func (t ArgType) PlainInt() bool {
	return t.Class() == ClassInt && t != TypeSyscall64 && !t.CapSet()
}

// Size returns an integer type's size in bytes (0 for other types).
func (t ArgType) Size() int { i, _ := lookupType(t); return i.size }

// Signed reports whether an integer type is signed.
func (t ArgType) Signed() bool { i, _ := lookupType(t); return i.signed }

// Operator is a matchArgs / matchReturnArgs operator. GT and LT are
// canonicalised to GreaterThan and LessThan.
type Operator string

// Supported argument operators.
const (
	OpEqual       Operator = "Equal"
	OpNotEqual    Operator = "NotEqual"
	OpPrefix      Operator = "Prefix"
	OpNotPrefix   Operator = "NotPrefix"
	OpPostfix     Operator = "Postfix"
	OpNotPostfix  Operator = "NotPostfix"
	OpMask        Operator = "Mask"
	OpGreaterThan Operator = "GreaterThan"
	OpLessThan    Operator = "LessThan"
)

// parseOperator canonicalises an operator; ok is false for operators this
// agent does not know or does not implement.
func parseOperator(s string) (op Operator, ok bool) {
	s = canonicalOperator(s)
	switch Operator(s) {
	case OpEqual, OpNotEqual, OpPrefix, OpNotPrefix, OpPostfix, OpNotPostfix, OpMask, OpGreaterThan, OpLessThan:
		return Operator(s), true
	}
	if Operator(s).Socket() {
		return Operator(s), true
	}
	switch op := Operator(s); op {
	case OpInRange, OpNotInRange, OpSubString, OpSubStringIgnCase, OpFileType, OpNotFileType, OpInMap, OpNotInMap, OpCapabilityMask:
		return op, true
	}
	switch s {
	case "GT":
		return OpGreaterThan, true
	case "LT":
		return OpLessThan, true
	}
	return "", false
}

const operatorNames = "Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, Mask, GreaterThan (GT), LessThan (LT), InRange, NotInRange, InMap, NotInMap, CapabilityMask, SubString, SubStringIgnCase, FileType, NotFileType, " + sockOperatorNames + ", SPortPriv, NotSPortPriv, DPortPriv, NotDPortPriv"

// unsupportedOperator reports Tetragon operators this agent does not
// implement.
func unsupportedOperator(s string) bool {
	switch s {
	case "CapabilitiesGained", "CelExpr":
		return true
	}
	return false
}

// appliesTo reports whether the operator can compare arguments of class c.
func (o Operator) appliesTo(c ArgClass) bool {
	switch o {
	case OpEqual, OpNotEqual:
		return c == ClassInt || c == ClassString || c == ClassPath
	case OpPrefix, OpNotPrefix, OpPostfix, OpNotPostfix:
		return c == ClassString || c == ClassPath
	case OpMask, OpGreaterThan, OpLessThan, OpInRange, OpNotInRange, OpInMap, OpNotInMap:
		return c == ClassInt
	case OpSubString, OpSubStringIgnCase:
		// Tetragon takes them on strings only; paths are strings here too
		return c == ClassString || c == ClassPath
	case OpFileType, OpNotFileType:
		return c == ClassPath
	case OpCapabilityMask:
		return false // capability sets only, checked by type
	}
	return o.Socket() && c == ClassSocket
}

// Selector is one entry of a hook's selectors. Its filters are ANDed; a
// hook's selectors are ORed.
type Selector struct {
	MatchPIDs       []PIDSelector
	MatchArgs       []ArgSelector
	MatchReturnArgs []ArgSelector
	MatchBinaries   []BinarySelector
	// MatchParentBinaries is matchBinaries on the parent process's
	// executable (with followChildren, on any ancestor's).
	MatchParentBinaries []BinarySelector
	MatchNamespaces     []NamespaceSelector
	MatchCapabilities   []CapabilitiesSelector
	// MatchCapabilityChanges compare a capability set with the one the
	// process had at its exec (changes.go).
	MatchCapabilityChanges []CapabilitiesSelector
	MatchNamespaceChanges  []NamespaceChangesSelector
	// MatchData filters the hook's data: entries, as matchArgs do the
	// arguments; Index is the entry's position in data.
	MatchData    []ArgSelector
	MatchActions []ActionSelector
	Src          Source
}

// SetOperator is In or NotIn.
type SetOperator string

// Set operators.
const (
	OpIn    SetOperator = "In"
	OpNotIn SetOperator = "NotIn"
)

// PIDSelector is a matchPIDs entry.
type PIDSelector struct {
	Operator       SetOperator
	Values         []uint32
	FollowForks    bool
	IsNamespacePID bool
	Src            Source
}

// ArgSelector is a matchArgs or matchReturnArgs entry, with its values
// already checked against the type of the argument it refers to.
type ArgSelector struct {
	// Index is the function argument index (as in args[].index); 0 for
	// matchReturnArgs.
	Index    uint32
	Operator Operator
	// ArgType is the declared type of the argument (or of returnArg).
	ArgType ArgType
	// Values as written.
	Values []string
	// The values parsed, by the operator's kind. The parser is the one
	// place values are parsed and checked; the compiler takes these as
	// they are.
	//   IntValues: the integer operators (Equal, NotEqual, Mask,
	//     GreaterThan, LessThan; decimal, 0x hex, 0o/leading-0 octal, 0b
	//     binary), CapabilityMask (the capabilities' bits) and FileType
	//     (S_IFMT values). An unsigned 64-bit value above MaxInt64 is
	//     stored as its two's-complement bit pattern; compare by
	//     ArgType.Signed.
	//   Ranges: InRange and NotInRange, InMap and NotInMap (a value v is
	//     v:v), the socket port operators, and Protocol, Family and State
	//     (a name or number n is n:n).
	//   Prefixes: the socket address operators' CIDRs.
	//   Lists: the spec.lists entries InMap values name ("list:NAME").
	// String operators keep Values.
	IntValues []int64
	Ranges    []Range
	Prefixes  []netip.Prefix
	Lists     []string
	Src       Source
}

// Range is an inclusive range of integers, in the order of the type the
// filter applies to.
type Range struct{ Lo, Hi int64 }

// BinaryOperator is a matchBinaries operator.
type BinaryOperator string

// Binary operators.
const (
	BinIn         BinaryOperator = "In"
	BinNotIn      BinaryOperator = "NotIn"
	BinPrefix     BinaryOperator = "Prefix"
	BinNotPrefix  BinaryOperator = "NotPrefix"
	BinPostfix    BinaryOperator = "Postfix"
	BinNotPostfix BinaryOperator = "NotPostfix"
)

// BinarySelector is a matchBinaries or matchParentBinaries entry: values
// are executable paths.
type BinarySelector struct {
	Operator       BinaryOperator
	Values         []string
	FollowChildren bool
	Src            Source
}

// NamespaceType names a Linux namespace kind in matchNamespaces.
type NamespaceType string

// Namespace types.
const (
	NsUts             NamespaceType = "Uts"
	NsIpc             NamespaceType = "Ipc"
	NsMnt             NamespaceType = "Mnt"
	NsPid             NamespaceType = "Pid"
	NsPidForChildren  NamespaceType = "PidForChildren"
	NsNet             NamespaceType = "Net"
	NsTime            NamespaceType = "Time"
	NsTimeForChildren NamespaceType = "TimeForChildren"
	NsCgroup          NamespaceType = "Cgroup"
	NsUser            NamespaceType = "User"
)

// HostNS is the value naming the host's (init process's) namespace.
const HostNS = "host_ns"

// NamespaceSelector is a matchNamespaces entry.
type NamespaceSelector struct {
	Namespace NamespaceType
	Operator  SetOperator
	// Values as written: namespace inode numbers or "host_ns".
	Values []string
	// IDs are the numeric values; HostNS is set when "host_ns" is listed.
	IDs    []uint32
	HostNS bool
	Src    Source
}

// CapabilityType is the capability set matchCapabilities looks at.
type CapabilityType string

// Capability sets.
const (
	CapEffective   CapabilityType = "Effective"
	CapInheritable CapabilityType = "Inheritable"
	CapPermitted   CapabilityType = "Permitted"
)

// CapabilitiesSelector is a matchCapabilities entry.
type CapabilitiesSelector struct {
	Type                  CapabilityType
	Operator              SetOperator
	IsNamespaceCapability bool
	// Values as written (canonicalised to upper case, e.g. CAP_SYS_ADMIN).
	Values []string
	// Mask has bit n set for capability number n of Values.
	Mask uint64
	Src  Source
}

// Action is a matchActions action.
type Action string

// Supported actions.
const (
	ActionPost     Action = "Post"
	ActionNoPost   Action = "NoPost"
	ActionSigkill  Action = "Sigkill"
	ActionSignal   Action = "Signal"
	ActionOverride Action = "Override"
	// ActionTrackSock follows the sock of argument ArgSock across calls:
	// events of any hook on that socket are attributed to the process
	// that tracked it. ActionUntrackSock stops following it.
	ActionTrackSock   Action = "TrackSock"
	ActionUntrackSock Action = "UntrackSock"
)

// Enforces reports whether the action acts on the process rather than only
// reporting; policy-mode monitor suppresses exactly these.
func (a Action) Enforces() bool {
	return a == ActionSigkill || a == ActionSignal || a == ActionOverride || a == ActionNotifyEnforcer || a == ActionSet || a == ActionRegs
}

// unsupportedAction reports Tetragon actions this agent does not implement.
func unsupportedAction(s string) bool {
	switch s {
	case "CleanupEnforcerNotification":
		return true
	}
	return false
}

// RateLimitScope is the scope of a Post action's rate limit.
type RateLimitScope string

// Rate limit scopes.
const (
	ScopeThread  RateLimitScope = "thread"
	ScopeProcess RateLimitScope = "process"
	ScopeGlobal  RateLimitScope = "global"
)

// ActionSelector is a matchActions entry.
type ActionSelector struct {
	Action Action
	// ArgError is the error Override returns (a negative errno).
	ArgError int32
	// ArgSig is the signal Signal sends (1..64).
	ArgSig uint32
	// ArgSock is the index of the sock or socket argument TrackSock and
	// UntrackSock act on.
	ArgSock uint32
	// ArgURL is the URL GetUrl requests; ArgFQDN the name DnsLookup
	// looks up.
	ArgURL, ArgFQDN string
	// ArgIndex and ArgValue (Set): the USDT argument written, and what.
	ArgIndex uint32
	ArgValue int64
	// ArgRegs (Regs): the registers written.
	ArgRegs []RegAssign
	// KernelStackTrace and UserStackTrace (Post, kprobes): the event
	// carries the call's kernel or user stack, symbolised.
	KernelStackTrace, UserStackTrace bool
	// RateLimit (Post only): repeated events of the same hook are not
	// posted again within this period. 0 means no limit.
	RateLimit time.Duration
	// RateLimitScope is set (default thread) when RateLimit is.
	RateLimitScope RateLimitScope
	Src            Source
}
