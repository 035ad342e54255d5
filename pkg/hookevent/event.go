// Package hookevent turns the records of policy hooks into Tetragon's
// events (process_kprobe, process_tracepoint, process_uprobe,
// process_lsm). It sits beside the process cache on the way from the
// observer to the event bus: a record's hook is described by a Hook, which
// the policy compiler (pkg/hooks) makes when it compiles the hook, and the
// builder needs nothing else of the compiler.
package hookevent

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// Kind says which list of a policy a hook comes from, and so which event
// its records make.
type Kind string

// Hook kinds.
const (
	KindKprobe     Kind = "kprobe" // kprobes and fentries: process_kprobe
	KindTracepoint Kind = "tracepoint"
	KindUprobe     Kind = "uprobe"
	KindUsdt       Kind = "usdt" // a USDT probe, on a uprobe: process_usdt
	KindLSM        Kind = "lsm"
)

// Hook is what the builder needs to know of a hook to make its events.
type Hook struct {
	Kind   Kind
	Policy string
	// Call is the kernel function, the tracepoint's event, the uprobe's
	// symbol or the LSM hook; Subsystem a tracepoint's group, Path a
	// uprobe's executable.
	Call      string
	Subsystem string
	Path      string
	// Provider is a USDT probe's provider (Call is its name).
	Provider  string
	Message   string
	Tags      []string
	Mechanism string
	// Args are the declared arguments by record slot (a nop argument
	// takes none), then a kprobe's data: entries.
	Args []tracingpolicy.ArgSpec
	// DataArgs is how many of Args, at their end, are data: entries: the
	// event reports them in ProcessKprobe.data, as Tetragon does.
	DataArgs int
	// Return: a return probe; ReturnType is returnArg's type ("" without
	// returnArg) and ReturnArgAction returnArgAction. NoReturn: a return
	// probe whose function returns void, served where the value is known
	// to be absent (the syscall mapping), so the event has no return value.
	Return          bool
	ReturnType      tracingpolicy.ArgType
	ReturnArgAction string
	NoReturn        bool
	// Limits is each selector's Post rate limit, if it has one.
	Limits []RateLimit
	// Actions are each selector's actions (monitor mode's without the
	// enforcing ones): GetUrl and DnsLookup are performed here, and some
	// decide the event's action.
	Actions [][]tracingpolicy.ActionSelector
	// Funcs names, for a hook serving a list of system calls, the function
	// of each syscall number its records carry.
	Funcs map[uint32]string
	// Stacks reads the stacks of a hook whose selectors ask for stack
	// traces (the loaded hook's stack map).
	Stacks func(id int32) ([]uint64, error)
}

// RateLimit is a selector's Post rate limit: events of one selector are
// posted at most once per Period and Scope.
type RateLimit struct {
	Period time.Duration
	Scope  tracingpolicy.RateLimitScope
}

// Builder makes hook events. It is safe for concurrent use.
type Builder struct {
	log zerolog.Logger
	// remote performs GetUrl and DnsLookup; nil: none (the manager then
	// refuses policies that use them)
	remote RemoteActions
	// symbols names the frames of stack traces
	symbols *symbolizer

	limitMu sync.Mutex
	// until holds, per rate-limited selector and scope, the kernel time
	// before which its events are not posted again
	until       map[limitKey]uint64
	rateLimited atomic.Uint64
}

type limitKey struct {
	hook, sel, id uint32
}

// maxLimitKeys bounds the rate limiter's memory; past it, expired entries
// are dropped.
const maxLimitKeys = 1 << 16

// NewBuilder returns a builder; log gets what it cannot report in events,
// remote (nil: none) performs GetUrl and DnsLookup.
func NewBuilder(log zerolog.Logger, remote RemoteActions) *Builder {
	return &Builder{log: log, remote: remote, symbols: newSymbolizer(), until: map[limitKey]uint64{}}
}

// RateLimited counts the events rate limits held back.
func (b *Builder) RateLimited() uint64 { return b.rateLimited.Load() }

// limited applies a selector's rate limit to a record. The limit is kept
// in user space: the kernel still sends every matching record.
func (b *Builder) limited(h *Hook, g *observer.HookRecord) bool {
	if int(g.Selector) >= len(h.Limits) || h.Limits[g.Selector].Period <= 0 {
		return false
	}
	rl := h.Limits[g.Selector]
	k := limitKey{hook: g.HookID, sel: g.Selector}
	switch rl.Scope {
	case tracingpolicy.ScopeProcess:
		k.id = g.Pid
	case tracingpolicy.ScopeGlobal:
	default:
		k.id = g.Tid
	}
	b.limitMu.Lock()
	defer b.limitMu.Unlock()
	if g.Ktime < b.until[k] {
		b.rateLimited.Add(1)
		return true
	}
	if len(b.until) >= maxLimitKeys {
		for key, until := range b.until {
			if until <= g.Ktime {
				delete(b.until, key)
			}
		}
		if len(b.until) >= maxLimitKeys {
			clear(b.until) // all live: forget them rather than grow
		}
	}
	b.until[k] = g.Ktime + uint64(rl.Period.Nanoseconds())
	return false
}

// Event turns record g of hook h into the event of its hook's kind
// (process_kprobe, process_tracepoint, process_uprobe or process_lsm),
// with the calling process and its parent from processes. It returns false
// when a rate limit holds the record back, or its selector says NoPost and
// the record came for GetUrl or DnsLookup only; processes is then not
// called.
func (b *Builder) Event(h *Hook, g *observer.HookRecord, processes func() (process, parent *api.Process)) (*api.GetEventsResponse, bool) {
	if b.limited(h, g) {
		return nil, false
	}
	if b.remoteAct(h, g) {
		return nil, false // NoPost: the record came for GetUrl or DnsLookup only
	}
	process, parent := processes()
	d := h
	action := api.KprobeAction_KPROBE_ACTION_POST
	switch {
	case g.Actions&uint32(sensor.ActSigkill) != 0:
		action = api.KprobeAction_KPROBE_ACTION_SIGKILL
	case g.Actions&uint32(sensor.ActSignal) != 0:
		action = api.KprobeAction_KPROBE_ACTION_SIGNAL
	case g.Actions&uint32(sensor.ActOverride) != 0:
		action = api.KprobeAction_KPROBE_ACTION_OVERRIDE
	}
	action = h.eventAction(g, action)
	var ev *api.GetEventsResponse
	switch d.Kind {
	case KindTracepoint:
		args := eventArgs(h, g, nil)
		ev = &api.GetEventsResponse{}
		ev.Event = &api.GetEventsResponse_ProcessTracepoint{ProcessTracepoint: &api.ProcessTracepoint{
			Process: process, Parent: parent, Subsys: d.Subsystem, Event: d.Call, Args: args,
			PolicyName: d.Policy, Action: action, Message: d.Message, Tags: d.Tags, Mechanism: h.Mechanism,
		}}
	case KindUprobe:
		args := eventArgs(h, g, nil)
		ev = &api.GetEventsResponse{}
		ev.Event = &api.GetEventsResponse_ProcessUprobe{ProcessUprobe: &api.ProcessUprobe{
			Process: process, Parent: parent, Path: d.Path, Symbol: d.Call, Args: args,
			PolicyName: d.Policy, Action: action, Message: d.Message, Tags: d.Tags, Mechanism: h.Mechanism,
		}}
	case KindUsdt:
		args := eventArgs(h, g, nil)
		ev = &api.GetEventsResponse{}
		ev.Event = &api.GetEventsResponse_ProcessUsdt{ProcessUsdt: &api.ProcessUsdt{
			Process: process, Parent: parent, Path: d.Path, Provider: d.Provider, Name: d.Call, Args: args,
			PolicyName: d.Policy, Action: action, Message: d.Message, Tags: d.Tags, Mechanism: h.Mechanism,
		}}
	case KindLSM:
		args := eventArgs(h, g, nil)
		ev = &api.GetEventsResponse{}
		ev.Event = &api.GetEventsResponse_ProcessLsm{ProcessLsm: &api.ProcessLsm{
			Process: process, Parent: parent, FunctionName: d.Call, Args: args,
			PolicyName: d.Policy, Action: action, Message: d.Message, Tags: d.Tags, Mechanism: h.Mechanism,
		}}
	default:
		fn := d.Call
		if f, ok := h.Funcs[g.Syscall]; ok {
			fn = f // the listed system call this record is of
		}
		var k *api.ProcessKprobe
		var argsBuf []*api.KprobeArgument
		ev, k, argsBuf = kprobeEvent()
		all := eventArgs(h, g, argsBuf)
		if n := len(all) - h.DataArgs; h.DataArgs > 0 && n >= 0 {
			all, k.Data = all[:n:n], all[n:]
			if n == 0 {
				all = nil
			}
		}
		k.Process, k.Parent, k.FunctionName, k.Args = process, parent, fn, all
		k.PolicyName, k.Action, k.Message, k.Tags, k.Mechanism = d.Policy, action, d.Message, d.Tags, h.Mechanism
		if d.Return {
			// the return probe posted the event, and did returnArgAction
			k.ReturnAction = api.KprobeAction_KPROBE_ACTION_POST
			switch d.ReturnArgAction {
			case tracingpolicy.ReturnArgTrackSock:
				k.ReturnAction = api.KprobeAction_KPROBE_ACTION_TRACKSOCK
			case tracingpolicy.ReturnArgUntrackSock:
				k.ReturnAction = api.KprobeAction_KPROBE_ACTION_UNTRACKSOCK
			}
			if !h.NoReturn {
				k.Return = returnArg(d.ReturnType, g.Ret)
			}
		}
		if g.Actions&uint32(sensor.ActKernelStack) != 0 {
			k.KernelStackTrace = b.stack(h, g.KStack, func(a []uint64) []*api.StackTraceEntry { return b.symbols.kernel(a) })
		}
		if g.Actions&uint32(sensor.ActUserStack) != 0 {
			k.UserStackTrace = b.stack(h, g.UStack, func(a []uint64) []*api.StackTraceEntry { return b.symbols.user(g.Pid, a) })
		}
	}
	return ev, true
}

// stack reads stack id of the hook's stack map and names its frames; a
// stack the kernel could not record (a negative id) or that cannot be read
// any more gives none.
func (b *Builder) stack(h *Hook, id int32, name func([]uint64) []*api.StackTraceEntry) []*api.StackTraceEntry {
	if id < 0 || h.Stacks == nil {
		return nil
	}
	frames, err := h.Stacks(id)
	if err != nil {
		b.log.Debug().Err(err).Msg("stack trace lost")
		return nil
	}
	return name(frames)
}

// returnArg reports a return value as returnArg declares it (an "int" as
// int_arg, as Tetragon does); without returnArg, the whole value.
func returnArg(typ tracingpolicy.ArgType, v int64) *api.KprobeArgument {
	if typ.PlainInt() {
		return intArg(typ, v)
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_LongArg{LongArg: v}}
}

// eventArgs decodes a record's arguments as the hook declared them,
// appending them to buf (none: nil).
func eventArgs(h *Hook, g *observer.HookRecord, buf []*api.KprobeArgument) []*api.KprobeArgument {
	if len(h.Args) == 0 {
		return nil
	}
	args := buf[:0]
	if cap(args) < len(h.Args) {
		args = make([]*api.KprobeArgument, 0, len(h.Args))
	}
	str := 0
	for i, a := range h.Args {
		var arg *api.KprobeArgument
		if a.Type.PlainInt() || a.Type == tracingpolicy.TypeFd {
			arg = intArg(a.Type, g.Ints[i])
		}
		switch {
		case a.Type.CapSet():
			arg = capSetArg(a.Type, g.Ints[i])
		case a.Type == tracingpolicy.TypeSyscall64:
			arg = syscallIDArg(g.Ints[i])
		case !a.Type.PlainInt():
			path, flags := g.Strs[str&1], g.StrFlags[str&1]
			str++
			switch a.Type {
			case "fd":
			case "file", "kiocb":
				arg = fileArg(escape.String(path), pathFlags(flags))
			case "sock", "socket":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_SockArg{SockArg: sockArg([]byte(path))}}
			case "skb":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_SkbArg{SkbArg: skbArg([]byte(path))}}
			case "bpf_attr":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_BpfAttrArg{BpfAttrArg: bpfAttrArg([]byte(path))}}
			case "bpf_map":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_BpfMapArg{BpfMapArg: bpfMapArg([]byte(path))}}
			case "perf_event":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_PerfEventArg{PerfEventArg: perfEventArg([]byte(path))}}
			case "sockaddr":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_SockaddrArg{SockaddrArg: sockaddrArg([]byte(path))}}
			case tracingpolicy.TypeDns:
				arg = dnsArg(path, g.Ints[i])
			case tracingpolicy.TypeInt32Arr:
				arg = int32ListArg([]byte(path))
			case tracingpolicy.TypeIovIter:
				arg = bytesArg([]byte(path))
			case tracingpolicy.TypeModule:
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_ModuleArg{ModuleArg: moduleArg([]byte(path))}}
			case "user_namespace":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_UserNsArg{UserNsArg: userNsArg([]byte(path))}}
			case "cred":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_ProcessCredentialsArg{ProcessCredentialsArg: credArg([]byte(path))}}
			case "linux_binprm":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_LinuxBinprmArg{LinuxBinprmArg: &api.KprobeLinuxBinprm{Path: escape.String(path), Flags: pathFlags(flags)}}}
			case "path", "dentry":
				arg = pathArg(escape.String(path), pathFlags(flags))
			case tracingpolicy.TypeCharBuf:
				size := bufSize(h.Args, g.Ints[:], a.SizeArgIndex)
				if a.ReturnCopy && g.Ret >= 0 && (size < 0 || g.Ret < size) {
					// read when the call returned (read(2) and the
					// like): its return value is the bytes it filled
					size = g.Ret
				}
				arg = charBufArg(path, size)
			default:
				arg = stringArg(escape.String(path))
			}
		}
		arg.Label = a.Label
		args = append(args, arg)
	}
	return args
}

// bufSize is the value of the argument sizeArgIndex names (1-based; 0:
// none), the length the call gave a char_buf, or -1.
func bufSize(order []tracingpolicy.ArgSpec, ints []int64, sizeArgIndex uint32) int64 {
	if sizeArgIndex > 0 {
		for i, a := range order {
			if a.Index == sizeArgIndex-1 && a.Type.PlainInt() && i < len(ints) && ints[i] >= 0 {
				return ints[i]
			}
		}
	}
	return -1
}

// charBufArg reports a char_buf as Tetragon does: its bytes, as bytes_arg,
// or as truncated_bytes_arg with the call's length (size; -1: unknown)
// when that is longer than what was read. The kernel reads the buffer as a
// string, up to its first NUL byte or the record's string slot: a longer
// buffer, or one with a NUL byte before its end, is reported truncated.
func charBufArg(buf string, size int64) *api.KprobeArgument {
	switch {
	case size >= 0 && size <= int64(len(buf)):
		return bytesArg([]byte(buf[:size]))
	case size > int64(len(buf)):
		return truncatedBytesArg([]byte(buf), uint64(size))
	}
	return bytesArg([]byte(buf))
}
