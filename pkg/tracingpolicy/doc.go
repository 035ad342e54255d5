// Package tracingpolicy reads Tetragon TracingPolicy documents
// (apiVersion cilium.io/v1alpha1, kind TracingPolicy or
// TracingPolicyNamespaced) into typed Go values, and rejects anything this
// agent cannot honour with an error that names the file, line, column and
// field path.
//
// The schema follows Tetragon's published CRD: field names, defaults and
// meanings are the same, so a policy written for Tetragon parses unchanged as
// long as it only uses what this agent implements. Parsing is strict: unknown
// fields, wrong value types, and known Tetragon features that this agent does
// not implement are errors (never silently ignored), and every error of a
// file is reported at once.
//
// # Defaults (as applied by Tetragon's CRD when a policy is loaded)
//
//   - kprobes[].syscall defaults to true. Tetragon's prose docs say "false",
//     but the CRD (which Tetragon applies to policy files too) says true; a
//     kernel-function kprobe such as fd_install must say "syscall: false".
//   - kprobes[].return, args[].maxData, args[].returnCopy, matchPIDs
//     followForks/isNamespacePID, matchBinaries followChildren and
//     matchCapabilities isNamespaceCapability default to false.
//   - matchCapabilities type defaults to Effective.
//   - matchActions rateLimitScope defaults to thread when rateLimit is set.
//
// # What is supported
//
// Hooks: kprobes, fentries (the kprobe spec, served by fentry/fexit
// programs), tracepoints (raw: true, or listed in rawtracepoints, for the
// raw tracepoint), lsmhooks, uprobes (symbols or offsets), usdts (path,
// provider, name: a USDT probe of the binary).
//
// Argument types (see [ArgType]): integers int, int8, uint8, int16, uint16,
// int32, uint32, int64, uint64, long, ulong, size_t (and Tetragon's sint8,
// sint16, sint32, sint64 aliases); strings string, char_buf, filename;
// paths fd, file, path, dentry; sockets sock, skb, sockaddr; kernel
// objects reported whole (linux_binprm, cred, user_namespace, bpf_attr,
// bpf_map, perf_event, ...: see [ArgType]); and nop (declared but not
// read). Every other Tetragon type is rejected as not supported. An
// argument's resolve path (members joined by dots) is checked for syntax
// here and against the kernel's BTF when the hook is compiled.
//
// matchArgs / matchReturnArgs operators (see [Operator]): Equal, NotEqual on
// every readable type; Prefix, NotPrefix, Postfix, NotPostfix on strings and
// paths; Mask, GreaterThan (GT), LessThan (LT), InRange, NotInRange, InMap, NotInMap on
// integers; SubString, SubStringIgnCase on strings and paths; FileType,
// NotFileType on paths; the socket operators (SPort, DAddr, ...) on sockets
// (sockops.go), with the *PortPriv operators as port filters on 0-1023.
// CelExpr and CapabilitiesGained are rejected as not supported.
//
// Selector filters: matchArgs, matchReturnArgs, matchPIDs, matchBinaries,
// matchParentBinaries, matchNamespaces, matchCapabilities, matchData
// (kprobes' data: entries, data.go), matchCapabilityChanges,
// matchNamespaceChanges (changes.go), matchActions. matchReturnActions is
// rejected as not supported.
//
// Actions (see [Action]): Post (with rateLimit / rateLimitScope), NoPost,
// Sigkill, Signal (argSig), Override (argError; syscalls, security_* functions,
// LSM hooks and uprobes), TrackSock and UntrackSock (argSock; also as a kprobe's
// returnArgAction on a returned sock), Set (argIndex, argValue; usdts) and
// Regs (argReg; uprobes), whose register writes the loader refuses where the
// kernel cannot do them. Every other Tetragon action is rejected as not
// supported, as is the Post option imaHash; kernelStackTrace and
// userStackTrace are taken on kprobes.
//
// spec.options: policy-mode (enforce or monitor, also parsed into
// Spec.Mode), hook-mechanism (auto, kprobe or syscall-tracepoint, into
// Spec.HookMechanism; this agent's own), disable-kprobe-multi and
// disable-uprobe-multi (accepted, no effect). podSelector and containerSelector are parsed and their shape
// checked.
//
// # Files and documents
//
// A file may hold several YAML documents. Documents of another kind (the
// agent's configuration, a ConfigMap, an empty document) are not errors:
// ParseDocuments returns them with Skipped wrapping ErrNotPolicy, and Parse
// drops them, or, when the file holds no policy at all, returns an error
// wrapping ErrNotPolicy. Any mistake in any policy document fails the whole
// file with an *ErrorList holding every error of the file, sorted by
// position. YAML anchors, aliases and merge keys work; the walk is bounded,
// so alias bombs fail fast.
//
// # Limits
//
// See the Max* constants: file size, selectors per hook, arguments per hook,
// filters per selector, values per filter, bytes per value.
//
// # Kernel checks
//
// Parsing checks everything that can be checked without a kernel. A hook's
// declared argument types are checked against the running kernel's function
// prototypes when the hook is compiled (pkg/hooks), through a [Kernel] such
// as [BTFKernel].
package tracingpolicy
