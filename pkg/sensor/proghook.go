package sensor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/bpf"
)

// MaxParams is how many function parameters a kprobe hook can read (the
// x86_64 calling convention passes six in registers).
const MaxParams = 6 // bpf/hook.c's TP_FIELDS (TestLimitsMatchC)

// MaxResolveSteps is how many members a resolve path may follow (the
// hook object's res_off rows: MAX_RESOLVE).
const MaxResolveSteps = 8 // TestLimitsMatchC

// ResolveStep is one step of a resolve path: Offset is added to the
// current address, then Load bytes (1, 2, 4 or 8) are read there; Load 0
// keeps the address.
type ResolveStep struct {
	Offset uint32
	Load   uint8
}

// Attach says what a hook served by bpf/hook.c attaches to.
type Attach int

// Attach points.
const (
	// AttachKprobe: a kernel function, by kprobe (kretprobe for Return,
	// fmod_ret for Override).
	AttachKprobe Attach = iota
	// AttachLSM: a BPF LSM program on hook Symbol (file_open); Override
	// denies the operation.
	AttachLSM
	// AttachTracepoint: perf tracepoint Group/Symbol; Fields say where the
	// parameters are in its record.
	AttachTracepoint
	// AttachRawTracepoint: raw tracepoint Symbol; the parameters are its
	// TP_PROTO arguments.
	AttachRawTracepoint
	// AttachUprobe: function Symbol (or file Offset) of executable Path
	// (uretprobe for Return).
	AttachUprobe
	// AttachFentry: kernel function Symbol, by an fentry program (fexit
	// for Return, which gets the parameters and the return value at once;
	// fmod_ret for Override).
	AttachFentry
)

// Argument sources only bpf/hook.c reads: the socket's fields, or the
// socket address, are copied into the argument's string slot (see
// struct sock_data there).
const (
	SrcRegSock = ArgSource(bpf.HookArgSrcSRC_REG_SOCK) // struct sock *
	// SrcRegModule: a struct module *, its name, taints and signature
	// verdict copied into the argument's string slot
	SrcRegModule   = ArgSource(bpf.HookArgSrcSRC_REG_MODULE)
	SrcRegSockaddr = ArgSource(bpf.HookArgSrcSRC_REG_SOCKADDR) // struct sockaddr *, kernel or user memory
	// SrcRegSyscall64: a system call number, with Syscall64Compat set when
	// the task is in a 32-bit (compat) system call
	SrcRegSyscall64 = ArgSource(bpf.HookArgSrcSRC_REG_SYSCALL64)
	// SrcRegBinprm: a struct linux_binprm *, read as the path of its file
	SrcRegBinprm = ArgSource(bpf.HookArgSrcSRC_REG_BINPRM)
	// SrcRegCred: a struct cred *, its ids and capability sets copied into
	// the argument's string slot (struct cred_data)
	SrcRegCred = ArgSource(bpf.HookArgSrcSRC_REG_CRED)
	// SrcRegDns: a struct msghdr * of a UDP send, read as the first
	// question's name of the DNS message in its payload; the argument's
	// integer carries the question's type and class and the header's
	// flags (bpf/lib/dns.h)
	SrcRegDns = ArgSource(bpf.HookArgSrcSRC_REG_DNS)
	// SrcRegNetDev: a struct net_device *, read as its name
	SrcRegNetDev = ArgSource(bpf.HookArgSrcSRC_REG_NETDEV)
	// SrcRegKiocb: a struct kiocb *, read as the path of its file
	SrcRegKiocb = ArgSource(bpf.HookArgSrcSRC_REG_KIOCB)
	// SrcRegUserNs: a struct user_namespace *, its level, owner, group and
	// inode number copied into the argument's string slot
	SrcRegUserNs = ArgSource(bpf.HookArgSrcSRC_REG_USERNS)
	// SrcRegSocket: a struct socket *, read as its sock (SrcRegSock)
	SrcRegSocket = ArgSource(bpf.HookArgSrcSRC_REG_SOCKET)
	// SrcRegSkb: a struct sk_buff *, read as its packet's family,
	// protocol, addresses and ports (struct skb_data)
	SrcRegSkb = ArgSource(bpf.HookArgSrcSRC_REG_SKB)
	// SrcRegBpfAttr: a union bpf_attr * of a BPF_PROG_LOAD, its program
	// type, instruction count and name (struct bpf_attr_data)
	SrcRegBpfAttr = ArgSource(bpf.HookArgSrcSRC_REG_BPF_ATTR)
	// SrcRegBpfMap: a struct bpf_map *, its type, key and value sizes,
	// maximum entries and name (struct bpf_map_data)
	SrcRegBpfMap = ArgSource(bpf.HookArgSrcSRC_REG_BPF_MAP)
	// SrcRegPerfEvent: a struct perf_event *, its attr's type, config and
	// config2, its PMU's name and, for the kprobe PMU, the probed
	// function (struct perf_event_data)
	SrcRegPerfEvent = ArgSource(bpf.HookArgSrcSRC_REG_PERF_EVENT)
	// SrcRegKCap: a kernel_cap_t *, read as the 64-bit capability set it
	// points to (an integer)
	SrcRegKCap = ArgSource(bpf.HookArgSrcSRC_REG_KCAP)
)

// Socket tracking (TrackSock, UntrackSock).
const (
	// ActTrackSock and ActUntrackSock: the selector tracks, or stops
	// tracking, the sock of argument Selector.SockArg.
	ActTrackSock   = uint8(bpf.HookActFlagACT_TRACKSOCK)
	ActUntrackSock = uint8(bpf.HookActFlagACT_UNTRACKSOCK)
	// RetTrackSock and RetUntrackSock: returnArgAction on the returned
	// sock (ProgHookSpec.RetSockAction).
	RetTrackSock   = 1
	RetUntrackSock = 2
)

// Stack traces (Post's kernelStackTrace and userStackTrace): the record
// then carries the stack's id in the hook's stack map (ProgHook.Stack).
const (
	ActKernelStack = uint8(bpf.HookActFlagACT_KSTACK)
	ActUserStack   = uint8(bpf.HookActFlagACT_USTACK)
	// MaxStackDepth is how many frames a stack holds
	// (PERF_MAX_STACK_DEPTH).
	MaxStackDepth = 127
)

// NewSockTrack creates the map of tracked sockets every hook object
// shares (Options.SockTrack): a socket one hook tracks is then followed by
// the others. The caller owns it.
func NewSockTrack() (*ebpf.Map, error) {
	cs, err := bpf.LoadHook()
	if err != nil {
		return nil, fmt.Errorf("reading the kprobe object: %w", err)
	}
	m, err := ebpf.NewMap(cs.Maps["socktrack"])
	if err != nil {
		return nil, fmt.Errorf("creating the socket tracking map: %w", err)
	}
	return m, nil
}

// OpenSockTrack opens the map of tracked sockets a previous run pinned at
// path (in its Points' directory): the objects adopted from that run use
// it, so this run's share it too.
func OpenSockTrack(path string) (*ebpf.Map, error) {
	cs, err := bpf.LoadHook()
	if err != nil {
		return nil, fmt.Errorf("reading the kprobe object: %w", err)
	}
	m, err := openPinnedMap(path)
	if err != nil {
		return nil, err
	}
	if err := cs.Maps["socktrack"].Compatible(m); err != nil {
		m.Close()
		return nil, fmt.Errorf("the socket tracking map pinned at %s: %w", path, err)
	}
	return m, nil
}

// Syscall64Compat marks a syscall64 value as a 32-bit (compat) system
// call's number, as Tetragon marks it.
const Syscall64Compat = 0x80000000

// How a tracepoint field is read into a parameter slot.
const (
	FieldValue   uint8 = 0 // an integer or pointer
	FieldAddr    uint8 = 1 // an array: its address
	FieldDataLoc uint8 = 2 // __data_loc: the data it locates
)

// TracepointField locates the format field behind one parameter slot.
type TracepointField struct {
	Offset uint16
	Size   uint8
	Read   uint8 // FieldValue, FieldAddr or FieldDataLoc
}

// ProgHookSpec is a compiled hook whose program gets the hooked call's
// parameters (kprobe, LSM, tracepoint or uprobe): everything bpf/hook.c
// needs.
type ProgHookSpec struct {
	ID     uint32
	Attach Attach
	// Symbol is the kernel function, LSM hook, tracepoint or user
	// function the hook attaches to.
	Symbol string
	// Group is a perf tracepoint's subsystem.
	Group string
	// Fields are the tracepoint fields behind parameter slots 0..Params-1.
	Fields []TracepointField
	// Path is a uprobe's executable; Offset, when not zero, the probed
	// instruction's file offset (Symbol is then only a name for messages).
	Path   string
	Offset uint64
	// RefCtrOffset, on a uprobe, is the file offset of a reference
	// counter the kernel increments in every process while the uprobe is
	// attached: a USDT probe's semaphore.
	RefCtrOffset uint64
	// Usdt, on a uprobe at a USDT probe, says where the probe's arguments
	// are (parameter slot i is the probe's argument i).
	Usdt []UsdtArg
	// Syscall says Symbol is an arch syscall entry point (__x64_sys_*):
	// the parameters are then the syscall's arguments, read from the user
	// registers it takes, and SyscallNr goes into the records.
	Syscall   bool
	SyscallNr uint32
	// Params is how many parameters the hook reads (at most MaxParams and
	// the function's arity).
	Params int
	// Return evaluates the selectors when the function returns, with its
	// return value (a kretprobe; the entry probe keeps the parameters).
	Return bool
	// Override serves the hook with an fmod_ret program instead of a
	// kprobe, so that ActOverride selectors can replace the return value.
	// The kernel allows that on security_* functions and functions marked
	// for error injection only. With Return the selectors are still
	// evaluated (and the value overridden) at entry, and an fexit program
	// reports the matched calls with the value the caller got.
	Override bool
	// Scoped is HookSpec.Scoped: the hook applies to the cgroups
	// SetCgroups names only.
	Scoped bool
	// Key is HookSpec.Key.
	Key       uint64
	Args      []Arg
	Selectors []Selector
	// RetSockAction (RetTrackSock, RetUntrackSock; 0: none) is what the
	// return probe does with the returned sock when a selector matched.
	RetSockAction uint8
}

// hookCfg checks a hook and makes its load-time configuration: the
// settings bpf/hook.c reads as constants, and the programs it loads.
func hookCfg(spec ProgHookSpec) (bpf.HookHookCfg, []string, error) {
	var cfg bpf.HookHookCfg
	if spec.Params < 0 || spec.Params > MaxParams {
		return cfg, nil, fmt.Errorf("hook reads %d parameters, at most %d", spec.Params, MaxParams)
	}
	// Override with Return: the fmod_ret program evaluates and overrides
	// at entry, the fexit program posts with the return value
	overrideAtReturn := spec.Override && spec.Return
	if overrideAtReturn && spec.Attach != AttachKprobe && spec.Attach != AttachFentry {
		return cfg, nil, fmt.Errorf("a %s hook cannot both override the return value and run at return", spec.Attach)
	}
	cfg = bpf.HookHookCfg{
		SyscallWrapper:   spec.Syscall,
		AtReturn:         spec.Return && !overrideAtReturn,
		OverrideAtReturn: overrideAtReturn,
		RetSockAction:    spec.RetSockAction,
		SyscallNr:        spec.SyscallNr,
		Nparams:          uint32(spec.Params),
	}
	for i, a := range spec.Args {
		if i >= MaxArgs {
			continue
		}
		cfg.ArgSize[i], cfg.ArgSigned[i] = a.Size, boolByte(a.Signed)
		if len(a.Resolve) > MaxResolveSteps {
			return cfg, nil, fmt.Errorf("argument %d: resolve takes %d steps, at most %d", i, len(a.Resolve), MaxResolveSteps)
		}
		cfg.ResSteps[i] = uint8(len(a.Resolve))
		for j, st := range a.Resolve {
			switch st.Load {
			case 0, 1, 2, 4, 8:
			default:
				return cfg, nil, fmt.Errorf("argument %d: resolve step %d reads %d bytes", i, j, st.Load)
			}
			cfg.ResOff[i][j], cfg.ResLoad[i][j] = st.Offset, st.Load
		}
	}
	if err := setUsdt(&cfg, spec); err != nil {
		return cfg, nil, err
	}
	if spec.Attach == AttachTracepoint && len(spec.Fields) < spec.Params {
		return cfg, nil, fmt.Errorf("tracepoint hook reads %d parameters and locates %d", spec.Params, len(spec.Fields))
	}
	for i, sel := range spec.Selectors {
		if i < MaxSelectors {
			if sel.Actions&(ActTrackSock|ActUntrackSock) != 0 && (sel.SockArg < 0 || sel.SockArg >= len(spec.Args) || !SockSource(spec.Args[sel.SockArg].Source) || spec.Args[sel.SockArg].Source == SrcRegSockaddr) {
				return cfg, nil, fmt.Errorf("selector %d: TrackSock or UntrackSock on argument %d, which is not a sock, socket or skb", i, sel.SockArg)
			}
			cfg.SelSockSlot[i] = uint8(sel.SockArg)
		}
	}
	if spec.RetSockAction != 0 && !spec.Return {
		return cfg, nil, errors.New("returnArgAction TrackSock or UntrackSock needs a return probe")
	}
	for i, f := range spec.Fields {
		if i < MaxParams {
			cfg.TpOff[i], cfg.TpSize[i], cfg.TpRead[i] = f.Offset, f.Size, f.Read
		}
	}
	cfg.Own = overrideAtReturn || cfg.Usdt.CtxWrites || usesStacks(spec)
	// Load only the programs this hook attaches: each one costs a
	// verification, and the fmod_ret one cannot load where fentry is missing.
	progs := []string{"gen_kprobe"}
	switch {
	case spec.Attach == AttachLSM:
		progs = []string{"gen_lsm"}
	case spec.Attach == AttachTracepoint:
		progs = []string{"gen_tracepoint"}
	case spec.Attach == AttachRawTracepoint:
		progs = []string{"gen_raw_tp"}
	case overrideAtReturn:
		// fexit attaches first: fmod_ret's verdicts are then all consumed
		progs = []string{"gen_fexit", "gen_fmod_ret"}
	case spec.Override:
		progs = []string{"gen_fmod_ret"}
	case spec.Attach == AttachFentry && spec.Return:
		progs = []string{"gen_fexit"}
	case spec.Attach == AttachFentry:
		progs = []string{"gen_fentry"}
	case spec.Return:
		// the return probe attaches first: an entry probe alone would
		// save parameters that nothing consumes
		progs = []string{"gen_kretprobe", "gen_kprobe"}
	}
	return cfg, progs, nil
}

// usesStacks reports whether a selector of the hook records stacks.
func usesStacks(spec ProgHookSpec) bool {
	return slices.ContainsFunc(spec.Selectors, func(s Selector) bool { return s.Actions&(ActKernelStack|ActUserStack) != 0 })
}

// loadObject loads (without attaching) the object of an attach point
// configured by cfg to load progs, its records going to events.
func loadObject(spec ProgHookSpec, cfg bpf.HookHookCfg, progs []string, stacks bool, events *ebpf.Map, opts Options) (*ebpf.Collection, error) {
	cs, err := bpf.LoadHook()
	if err != nil {
		return nil, fmt.Errorf("reading the kprobe object: %w", err)
	}
	if err := cs.Variables["cfg"].Set(cfg); err != nil {
		return nil, fmt.Errorf("setting the hook's configuration: %w", err)
	}
	for name, p := range cs.Programs {
		if !slices.Contains(progs, name) {
			delete(cs.Programs, name)
		} else if name != "gen_kprobe" && name != "gen_kretprobe" && name != "gen_tracepoint" && name != "gen_raw_tp" {
			// BTF-attached programs name their function at load time
			p.AttachTo = spec.Symbol
		}
	}
	if !stacks {
		// a stack map's entries are preallocated: no stacks, no room
		cs.Maps["stacks"].MaxEntries = 1
	}
	if !cfg.OverrideAtReturn {
		// the verdicts fmod_ret passes to fexit (preallocated LRU hash)
		cs.Maps["verdicts"].MaxEntries = 1
	}
	if !cfg.AtReturn || spec.Attach == AttachFentry {
		// the LRU hash of parameters saved at entry is preallocated; a hook
		// that does not run at return never touches it, nor does fexit,
		// which gets the parameters at return
		cs.Maps["entries"].MaxEntries = 1
	}
	replace := map[string]*ebpf.Map{"events": events}
	if opts.ExecCreds != nil {
		replace["exec_creds"] = opts.ExecCreds
	} else {
		// nothing reads the object's own map (Stage refuses the hooks
		// that would)
		cs.Maps["exec_creds"].MaxEntries = 1
	}
	if opts.SockTrack != nil {
		replace["socktrack"] = opts.SockTrack
	} else {
		// sockets are then followed within this object only
		cs.Maps["socktrack"].MaxEntries = 1024
	}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: opts.KernelTypes},
		MapReplacements: replace,
	})
	if err != nil {
		what := spec.Attach.String() + " hook"
		if spec.Override && spec.Attach == AttachKprobe {
			// the kernel lets BPF change the return value of security_*
			// functions and of functions marked for error injection only
			what = "fmod_ret hook (Override needs a function whose return value the kernel lets BPF modify: security_* or error injection)"
			if cfg.OverrideAtReturn {
				what = "fmod_ret and fexit hook (Override needs a function whose return value the kernel lets BPF modify: security_* or error injection; return: true an fexit program)"
			}
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) && ctxWriteRefused(ve) {
			return nil, fmt.Errorf("loading %s on %s: %w", what, spec.Symbol, ErrNoCtxWrites)
		}
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading %s on %s: %+v", what, spec.Symbol, ve)
		}
		return nil, fmt.Errorf("loading %s on %s: %w", what, spec.Symbol, err)
	}
	return coll, nil
}

func (a Attach) String() string {
	switch a {
	case AttachLSM:
		return "BPF LSM"
	case AttachTracepoint:
		return "tracepoint"
	case AttachRawTracepoint:
		return "raw tracepoint"
	case AttachUprobe:
		return "uprobe"
	case AttachFentry:
		return "fentry"
	}
	return "kprobe"
}

// attachProg attaches loaded program prog of the hook.
func attachProg(spec ProgHookSpec, prog string, p *ebpf.Program) (link.Link, error) {
	var l link.Link
	var err error
	what := spec.Symbol
	switch {
	case prog == "gen_fmod_ret":
		l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachModifyReturn})
	case prog == "gen_fentry":
		l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceFEntry})
	case prog == "gen_fexit":
		l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceFExit})
	case prog == "gen_lsm":
		l, err = link.AttachLSM(link.LSMOptions{Program: p})
	case prog == "gen_tracepoint":
		what = spec.Group + "/" + spec.Symbol
		l, err = link.Tracepoint(spec.Group, spec.Symbol, p, nil)
	case prog == "gen_raw_tp":
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: spec.Symbol, Program: p})
	case spec.Attach == AttachUprobe:
		what = spec.Path + " " + spec.Symbol
		var ex *link.Executable
		ex, err = link.OpenExecutable(spec.Path)
		if err != nil {
			break
		}
		// a non-zero Address is the file offset probed; the symbol is
		// then not looked up
		opts := &link.UprobeOptions{Address: spec.Offset, RefCtrOffset: spec.RefCtrOffset}
		if prog == "gen_kretprobe" {
			l, err = ex.Uretprobe(spec.Symbol, p, opts)
			prog = "uretprobe"
		} else {
			l, err = ex.Uprobe(spec.Symbol, p, opts)
			prog = "uprobe"
		}
	case prog == "gen_kretprobe":
		l, err = link.Kretprobe(spec.Symbol, p, nil)
	default:
		l, err = link.Kprobe(spec.Symbol, p, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("attaching %s to %s: %w", strings.TrimPrefix(prog, "gen_"), what, err)
	}
	return l, nil
}
