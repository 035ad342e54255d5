package encoder

import (
	"encoding/base64"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// The hand-written JSON encoder for the hot event types. protojson walks
// every message through reflection and then needs a json.Compact pass to
// undo its randomized whitespace: ~45 µs an exec event, the bottleneck of
// `tetra getevents -o json` (docs/performance.md). This writes the same
// bytes as protojson (UseProtoNames, compacted) straight from the generated
// structs:
//
//   - fields in declaration order, as protojson ranges them;
//   - proto3 scalars and enums left out at their zero value, messages and
//     oneof members written whenever set (a set oneof member even when it
//     is zero: it has explicit presence);
//   - 64-bit integers as strings, enums by name (by number when unknown),
//     bytes as padded standard base64, wrappers as their bare value,
//     timestamps as RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits;
//   - strings escaped as protojson escapes them.
//
// Whatever protojson would reject (invalid UTF-8, an out-of-range
// timestamp) makes it give up (ok false), so the caller falls back to
// protojson and reports protojson's own error. Fuzzing (FuzzJSONMatchesProtojson)
// and the corpus test hold the two to the same output.

// fastWriter appends one event's JSON to buf. ok turns false at the first
// value protojson would refuse; the rest of the output is then garbage and
// is thrown away. One per encoder: it keeps what makes capability lists
// cheap across events.
type fastWriter struct {
	buf []byte
	ok  bool

	// capNames are the capability names, quoted, by value: a map lookup
	// per capability was half the encoder's time (two processes with two
	// lists of ~40 each in every event)
	capNames []string
	// lastCaps and lastCapsJSON are the last list written and its JSON:
	// nearly every process has one of a few sets
	lastCaps     []api.CapabilitiesType
	lastCapsJSON []byte

	// byPointer, when not nil, holds the JSON of processes already
	// written, by pointer: for callers whose processes are shared by
	// many events and never modified (JSON.CacheProcesses)
	byPointer map[*api.Process][]byte
}

// maxCachedProcesses bounds the processes (and event bodies) whose JSON is
// kept; past it the cache starts over. A process's JSON is ~1.5 KiB.
const maxCachedProcesses = 4096

// processes writes an event's process and parent fields.
func (w *fastWriter) processes(first *bool, proc, parent *api.Process) {
	if proc != nil {
		w.key(first, "process")
		w.cachedProcess(proc)
	}
	if parent != nil {
		w.key(first, "parent")
		w.cachedProcess(parent)
	}
}

// cachedProcess writes p, from byPointer when it is there.
func (w *fastWriter) cachedProcess(p *api.Process) {
	if w.byPointer == nil {
		w.process(p)
		return
	}
	if j, ok := w.byPointer[p]; ok {
		w.buf = append(w.buf, j...)
		return
	}
	start := len(w.buf)
	w.process(p)
	if !w.ok {
		return
	}
	if len(w.byPointer) >= maxCachedProcesses {
		clear(w.byPointer)
	}
	w.byPointer[p] = append([]byte(nil), w.buf[start:]...)
}

func newFastWriter() *fastWriter {
	w := &fastWriter{}
	for v, name := range api.CapabilitiesType_name {
		if v < 0 || v > 1024 {
			continue // not a dense enum value: enum() looks it up instead
		}
		if int(v) >= len(w.capNames) {
			w.capNames = append(w.capNames, make([]string, int(v)+1-len(w.capNames))...)
		}
		w.capNames[v] = `"` + name + `"`
	}
	return w
}

// appendFastJSON appends ev as protojson would write it, compacted. It
// returns false for event kinds it does not know (no event, or one added
// to the API later) and for values protojson would refuse.
func (w *fastWriter) appendFastJSON(buf []byte, ev *api.GetEventsResponse) ([]byte, bool) {
	w.buf, w.ok = buf, true
	w.byte('{')
	first := true
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		w.key(&first, "process_exec")
		w.processExec(e.ProcessExec)
	case *api.GetEventsResponse_ProcessExit:
		w.key(&first, "process_exit")
		w.processExit(e.ProcessExit)
	case *api.GetEventsResponse_ProcessKprobe:
		w.key(&first, "process_kprobe")
		w.processKprobe(e.ProcessKprobe)
	default:
		return w.buf, false
	}
	w.stringField(&first, "node_name", ev.GetNodeName())
	w.timestampField(&first, "time", ev.GetTime())
	w.byte('}')
	return w.buf, w.ok
}

func (w *fastWriter) byte(c byte) { w.buf = append(w.buf, c) }

// key writes `"name":`, after a comma unless it is the object's first.
// Names are this file's constants: plain ASCII, nothing to escape.
func (w *fastWriter) key(first *bool, name string) {
	if !*first {
		w.buf = append(w.buf, ',')
	}
	*first = false
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '"', ':')
}

func (w *fastWriter) stringField(first *bool, name, v string) {
	if v == "" {
		return
	}
	w.key(first, name)
	w.string(v)
}

func (w *fastWriter) uint32Field(first *bool, name string, v uint32) {
	if v == 0 {
		return
	}
	w.key(first, name)
	w.buf = strconv.AppendUint(w.buf, uint64(v), 10)
}

func (w *fastWriter) uint64Field(first *bool, name string, v uint64) {
	if v == 0 {
		return
	}
	w.key(first, name)
	w.quotedUint(v)
}

func (w *fastWriter) quotedUint(v uint64) {
	w.buf = append(w.buf, '"')
	w.buf = strconv.AppendUint(w.buf, v, 10)
	w.buf = append(w.buf, '"')
}

func (w *fastWriter) boolField(first *bool, name string, v bool) {
	if !v {
		return
	}
	w.key(first, name)
	w.buf = append(w.buf, "true"...)
}

// wrapperField writes a google.protobuf.UInt32Value: set means written,
// 0 included.
func (w *fastWriter) wrapperField(first *bool, name string, v *wrapperspb.UInt32Value) {
	if v == nil {
		return
	}
	w.key(first, name)
	w.buf = strconv.AppendUint(w.buf, uint64(v.GetValue()), 10)
}

func (w *fastWriter) timestampField(first *bool, name string, ts *timestamppb.Timestamp) {
	if ts == nil {
		return
	}
	w.key(first, name)
	w.timestamp(ts)
}

// Bounds protojson accepts: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// timestamp writes what protojson writes: UTC, Z, and the shortest of 0,
// 3, 6 or 9 fractional digits that holds the nanoseconds.
func (w *fastWriter) timestamp(ts *timestamppb.Timestamp) {
	secs, nanos := ts.GetSeconds(), ts.GetNanos()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos > 999_999_999 {
		w.ok = false
		return
	}
	w.buf = append(w.buf, '"')
	w.buf = time.Unix(secs, 0).UTC().AppendFormat(w.buf, "2006-01-02T15:04:05")
	if nanos != 0 {
		digits, v := 9, nanos
		switch {
		case nanos%1_000_000 == 0:
			digits, v = 3, nanos/1_000_000
		case nanos%1_000 == 0:
			digits, v = 6, nanos/1_000
		}
		w.buf = append(w.buf, '.')
		start := len(w.buf)
		for range digits {
			w.buf = append(w.buf, '0')
		}
		for i := len(w.buf) - 1; i >= start; i-- {
			w.buf[i] = byte('0' + v%10)
			v /= 10
		}
	}
	w.buf = append(w.buf, 'Z', '"')
}

// string writes s as protojson's encoder does: ", \ and control
// characters escaped (\b \f \n \r \t, else \u00XX in lower-case hex),
// everything else as is, including <, >, & and U+2028. Invalid UTF-8 is
// refused, as protojson refuses it.
func (w *fastWriter) string(s string) {
	const hex = "0123456789abcdef"
	w.buf = append(w.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				w.ok = false
				return
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		w.buf = append(w.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			w.buf = append(w.buf, '\\', c)
		case '\b':
			w.buf = append(w.buf, '\\', 'b')
		case '\f':
			w.buf = append(w.buf, '\\', 'f')
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		default:
			w.buf = append(w.buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	w.buf = append(w.buf, s[start:]...)
	w.buf = append(w.buf, '"')
}

func (w *fastWriter) processExec(m *api.ProcessExec) {
	first := true
	w.byte('{')
	w.processes(&first, m.GetProcess(), m.GetParent())
	w.byte('}')
}

func (w *fastWriter) processExit(m *api.ProcessExit) {
	first := true
	w.byte('{')
	w.processes(&first, m.GetProcess(), m.GetParent())
	w.stringField(&first, "signal", m.GetSignal())
	w.uint32Field(&first, "status", m.GetStatus())
	w.timestampField(&first, "time", m.GetTime())
	w.byte('}')
}

func (w *fastWriter) processKprobe(m *api.ProcessKprobe) {
	first := true
	w.byte('{')
	w.processes(&first, m.GetProcess(), m.GetParent())
	w.stringField(&first, "function_name", m.GetFunctionName())
	if args := m.GetArgs(); len(args) > 0 {
		w.key(&first, "args")
		w.byte('[')
		for i, a := range args {
			if i > 0 {
				w.byte(',')
			}
			w.kprobeArgument(a)
		}
		w.byte(']')
	}
	if m.GetReturn() != nil {
		w.key(&first, "return")
		w.kprobeArgument(m.GetReturn())
	}
	if a := m.GetAction(); a != 0 {
		w.key(&first, "action")
		w.enum(api.KprobeAction_name, int32(a))
	}
	w.stackTrace(&first, "kernel_stack_trace", m.GetKernelStackTrace())
	w.stringField(&first, "policy_name", m.GetPolicyName())
	if a := m.GetReturnAction(); a != 0 {
		w.key(&first, "return_action")
		w.enum(api.KprobeAction_name, int32(a))
	}
	w.stringField(&first, "message", m.GetMessage())
	if tags := m.GetTags(); len(tags) > 0 {
		w.key(&first, "tags")
		w.byte('[')
		for i, t := range tags {
			if i > 0 {
				w.byte(',')
			}
			w.string(t)
		}
		w.byte(']')
	}
	w.stackTrace(&first, "user_stack_trace", m.GetUserStackTrace())
	if data := m.GetData(); len(data) > 0 {
		w.key(&first, "data")
		w.byte('[')
		for i, a := range data {
			if i > 0 {
				w.byte(',')
			}
			w.kprobeArgument(a)
		}
		w.byte(']')
	}
	w.stringField(&first, "mechanism", m.GetMechanism())
	w.byte('}')
}

// stackTrace writes a repeated StackTraceEntry field.
func (w *fastWriter) stackTrace(first *bool, name string, st []*api.StackTraceEntry) {
	if len(st) == 0 {
		return
	}
	w.key(first, name)
	w.byte('[')
	for i, e := range st {
		if i > 0 {
			w.byte(',')
		}
		inner := true
		w.byte('{')
		w.uint64Field(&inner, "address", e.GetAddress())
		w.uint64Field(&inner, "offset", e.GetOffset())
		w.stringField(&inner, "symbol", e.GetSymbol())
		w.stringField(&inner, "module", e.GetModule())
		w.byte('}')
	}
	w.byte(']')
}

// enum writes a value's name, or its number when this build does not know
// it (proto3 enums are open), as protojson does.
func (w *fastWriter) enum(names map[int32]string, v int32) {
	if name, ok := names[v]; ok {
		w.buf = append(w.buf, '"')
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, '"')
		return
	}
	w.buf = strconv.AppendInt(w.buf, int64(v), 10)
}

// kprobeArgument writes an argument. A oneof member is written whenever
// it is set, even at its zero value; a message member that is set but nil
// is an empty object, as protojson writes it.
func (w *fastWriter) kprobeArgument(m *api.KprobeArgument) {
	first := true
	w.byte('{')
	switch a := m.GetArg().(type) {
	case *api.KprobeArgument_StringArg:
		w.key(&first, "string_arg")
		w.string(a.StringArg)
	case *api.KprobeArgument_IntArg:
		w.key(&first, "int_arg")
		w.buf = strconv.AppendInt(w.buf, int64(a.IntArg), 10)
	case *api.KprobeArgument_SizeArg:
		w.key(&first, "size_arg")
		w.quotedUint(a.SizeArg)
	case *api.KprobeArgument_BytesArg:
		w.key(&first, "bytes_arg")
		w.buf = append(w.buf, '"')
		w.buf = base64.StdEncoding.AppendEncode(w.buf, a.BytesArg)
		w.buf = append(w.buf, '"')
	case *api.KprobeArgument_TruncatedBytesArg:
		w.key(&first, "truncated_bytes_arg")
		t := a.TruncatedBytesArg
		inner := true
		w.byte('{')
		if b := t.GetBytesArg(); len(b) > 0 {
			w.key(&inner, "bytes_arg")
			w.buf = append(w.buf, '"')
			w.buf = base64.StdEncoding.AppendEncode(w.buf, b)
			w.buf = append(w.buf, '"')
		}
		w.uint64Field(&inner, "orig_size", t.GetOrigSize())
		w.byte('}')
	case *api.KprobeArgument_PathArg:
		w.key(&first, "path_arg")
		p := a.PathArg
		w.fileFields(p.GetMount(), p.GetPath(), p.GetFlags(), p.GetPermission())
	case *api.KprobeArgument_FileArg:
		w.key(&first, "file_arg")
		f := a.FileArg
		w.fileFields(f.GetMount(), f.GetPath(), f.GetFlags(), f.GetPermission())
	case *api.KprobeArgument_SockArg:
		w.key(&first, "sock_arg")
		w.sock(a.SockArg)
	case *api.KprobeArgument_SkbArg:
		w.key(&first, "skb_arg")
		w.skb(a.SkbArg)
	case *api.KprobeArgument_BpfAttrArg:
		w.key(&first, "bpf_attr_arg")
		b := a.BpfAttrArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "ProgType", b.GetProgType())
		w.uint32Field(&inner, "InsnCnt", b.GetInsnCnt())
		w.stringField(&inner, "ProgName", b.GetProgName())
		w.byte('}')
	case *api.KprobeArgument_BpfMapArg:
		w.key(&first, "bpf_map_arg")
		m := a.BpfMapArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "MapType", m.GetMapType())
		w.uint32Field(&inner, "KeySize", m.GetKeySize())
		w.uint32Field(&inner, "ValueSize", m.GetValueSize())
		w.uint32Field(&inner, "MaxEntries", m.GetMaxEntries())
		w.stringField(&inner, "MapName", m.GetMapName())
		w.byte('}')
	case *api.KprobeArgument_PerfEventArg:
		w.key(&first, "perf_event_arg")
		p := a.PerfEventArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "KprobeFunc", p.GetKprobeFunc())
		w.stringField(&inner, "Type", p.GetType())
		w.uint64Field(&inner, "Config", p.GetConfig())
		w.uint64Field(&inner, "ProbeAddr", p.GetProbeAddr())
		w.byte('}')
	case *api.KprobeArgument_LongArg:
		w.key(&first, "long_arg")
		w.buf = append(w.buf, '"')
		w.buf = strconv.AppendInt(w.buf, a.LongArg, 10)
		w.buf = append(w.buf, '"')
	case *api.KprobeArgument_UintArg:
		w.key(&first, "uint_arg")
		w.buf = strconv.AppendUint(w.buf, uint64(a.UintArg), 10)
	case *api.KprobeArgument_SockaddrArg:
		w.key(&first, "sockaddr_arg")
		sa := a.SockaddrArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "family", sa.GetFamily())
		w.stringField(&inner, "addr", sa.GetAddr())
		w.uint32Field(&inner, "port", sa.GetPort())
		w.byte('}')
	case *api.KprobeArgument_UserNsArg:
		w.key(&first, "user_ns_arg")
		u := a.UserNsArg
		inner := true
		w.byte('{')
		if l := u.GetLevel(); l != nil {
			w.key(&inner, "level")
			w.buf = strconv.AppendInt(w.buf, int64(l.GetValue()), 10)
		}
		w.wrapperField(&inner, "uid", u.GetUid())
		w.wrapperField(&inner, "gid", u.GetGid())
		w.namespace(&inner, "ns", u.GetNs())
		w.byte('}')
	case *api.KprobeArgument_ProcessCredentialsArg:
		w.key(&first, "process_credentials_arg")
		w.credentials(a.ProcessCredentialsArg)
	case *api.KprobeArgument_LinuxBinprmArg:
		w.key(&first, "linux_binprm_arg")
		b := a.LinuxBinprmArg
		w.fileFields("", b.GetPath(), b.GetFlags(), b.GetPermission())
	case *api.KprobeArgument_SyscallId:
		w.key(&first, "syscall_id")
		inner := true
		w.byte('{')
		w.uint32Field(&inner, "id", a.SyscallId.GetId())
		w.stringField(&inner, "abi", a.SyscallId.GetAbi())
		w.byte('}')
	case *api.KprobeArgument_KernelCapTArg:
		w.stringField(&first, "kernel_cap_t_arg", a.KernelCapTArg)
	case *api.KprobeArgument_CapInheritableArg:
		w.stringField(&first, "cap_inheritable_arg", a.CapInheritableArg)
	case *api.KprobeArgument_CapPermittedArg:
		w.stringField(&first, "cap_permitted_arg", a.CapPermittedArg)
	case *api.KprobeArgument_CapEffectiveArg:
		w.stringField(&first, "cap_effective_arg", a.CapEffectiveArg)
	case nil:
	case *api.KprobeArgument_ModuleArg:
		w.key(&first, "module_arg")
		m := a.ModuleArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "name", m.GetName())
		if ok := m.GetSignatureOk(); ok != nil {
			// a google.protobuf.BoolValue: set means written, false included
			w.key(&inner, "signature_ok")
			w.buf = strconv.AppendBool(w.buf, ok.GetValue())
		}
		if t := m.GetTainted(); len(t) > 0 {
			w.key(&inner, "tainted")
			w.byte('[')
			for i, v := range t {
				if i > 0 {
					w.byte(',')
				}
				w.enum(api.TaintedBitsType_name, int32(v))
			}
			w.byte(']')
		}
		w.byte('}')
	case *api.KprobeArgument_Int32ListArg:
		w.key(&first, "int32_list_arg")
		w.byte('{')
		if vals := a.Int32ListArg.GetValues(); len(vals) > 0 {
			inner := true
			w.key(&inner, "values")
			w.byte('[')
			for i, v := range vals {
				if i > 0 {
					w.byte(',')
				}
				w.buf = strconv.AppendInt(w.buf, int64(v), 10)
			}
			w.byte(']')
		}
		w.byte('}')
	case *api.KprobeArgument_DnsArg:
		w.key(&first, "dns_arg")
		d := a.DnsArg
		inner := true
		w.byte('{')
		w.stringField(&inner, "query_name", d.GetQueryName())
		w.uint32Field(&inner, "query_type", d.GetQueryType())
		w.stringField(&inner, "query_type_str", d.GetQueryTypeStr())
		w.uint32Field(&inner, "query_class", d.GetQueryClass())
		w.uint32Field(&inner, "tx_id", d.GetTxId())
		w.boolField(&inner, "response", d.GetResponse())
		w.boolField(&inner, "parsed", d.GetParsed())
		w.byte('}')
	default:
		// a oneof member added to the API after this encoder
		w.ok = false
	}
	w.stringField(&first, "label", m.GetLabel())
	w.byte('}')
}

func (w *fastWriter) sock(sk *api.KprobeSock) {
	first := true
	w.byte('{')
	w.stringField(&first, "family", sk.GetFamily())
	w.stringField(&first, "type", sk.GetType())
	w.stringField(&first, "protocol", sk.GetProtocol())
	w.stringField(&first, "saddr", sk.GetSaddr())
	w.stringField(&first, "daddr", sk.GetDaddr())
	w.uint32Field(&first, "sport", sk.GetSport())
	w.uint32Field(&first, "dport", sk.GetDport())
	w.stringField(&first, "state", sk.GetState())
	w.byte('}')
}

func (w *fastWriter) skb(sk *api.KprobeSkb) {
	first := true
	w.byte('{')
	w.uint32Field(&first, "hash", sk.GetHash())
	w.uint32Field(&first, "len", sk.GetLen())
	w.uint32Field(&first, "priority", sk.GetPriority())
	w.uint32Field(&first, "mark", sk.GetMark())
	w.stringField(&first, "saddr", sk.GetSaddr())
	w.stringField(&first, "daddr", sk.GetDaddr())
	w.uint32Field(&first, "sport", sk.GetSport())
	w.uint32Field(&first, "dport", sk.GetDport())
	w.uint32Field(&first, "proto", sk.GetProto())
	w.uint32Field(&first, "sec_path_len", sk.GetSecPathLen())
	w.uint32Field(&first, "sec_path_olen", sk.GetSecPathOlen())
	w.stringField(&first, "protocol", sk.GetProtocol())
	w.stringField(&first, "family", sk.GetFamily())
	w.byte('}')
}

// fileFields writes a KprobeFile or KprobePath: the two have the same
// fields.
func (w *fastWriter) fileFields(mount, path, flags, permission string) {
	first := true
	w.byte('{')
	w.stringField(&first, "mount", mount)
	w.stringField(&first, "path", path)
	w.stringField(&first, "flags", flags)
	w.stringField(&first, "permission", permission)
	w.byte('}')
}

func (w *fastWriter) process(p *api.Process) {
	first := true
	w.byte('{')
	w.stringField(&first, "exec_id", p.GetExecId())
	w.wrapperField(&first, "pid", p.GetPid())
	w.wrapperField(&first, "uid", p.GetUid())
	w.stringField(&first, "cwd", p.GetCwd())
	w.stringField(&first, "binary", p.GetBinary())
	w.stringField(&first, "arguments", p.GetArguments())
	w.stringField(&first, "flags", p.GetFlags())
	w.timestampField(&first, "start_time", p.GetStartTime())
	w.wrapperField(&first, "auid", p.GetAuid())
	if pod := p.GetPod(); pod != nil {
		w.key(&first, "pod")
		w.pod(pod)
	}
	w.stringField(&first, "docker", p.GetDocker())
	w.stringField(&first, "parent_exec_id", p.GetParentExecId())
	if c := p.GetCap(); c != nil {
		w.key(&first, "cap")
		w.capabilities(c)
	}
	if ns := p.GetNs(); ns != nil {
		w.key(&first, "ns")
		w.namespaces(ns)
	}
	w.wrapperField(&first, "tid", p.GetTid())
	if c := p.GetProcessCredentials(); c != nil {
		w.key(&first, "process_credentials")
		w.credentials(c)
	}
	if v := p.GetInInitTree(); v != nil {
		// a google.protobuf.BoolValue: set means written, false included
		w.key(&first, "in_init_tree")
		w.buf = strconv.AppendBool(w.buf, v.GetValue())
	}
	if c := p.GetContainer(); c != nil {
		w.key(&first, "container")
		w.container(c)
	}
	w.uint64Field(&first, "cgroup_id", p.GetCgroupId())
	w.byte('}')
}

func (w *fastWriter) capabilities(c *api.Capabilities) {
	first := true
	w.byte('{')
	w.capList(&first, "permitted", c.GetPermitted())
	w.capList(&first, "effective", c.GetEffective())
	w.capList(&first, "inheritable", c.GetInheritable())
	w.byte('}')
}

func (w *fastWriter) capList(first *bool, name string, caps []api.CapabilitiesType) {
	if len(caps) == 0 {
		return
	}
	w.key(first, name)
	if slices.Equal(caps, w.lastCaps) {
		w.buf = append(w.buf, w.lastCapsJSON...)
		return
	}
	start := len(w.buf)
	w.byte('[')
	for i, c := range caps {
		if i > 0 {
			w.byte(',')
		}
		if c >= 0 && int(c) < len(w.capNames) && w.capNames[c] != "" {
			w.buf = append(w.buf, w.capNames[c]...)
		} else {
			w.enum(api.CapabilitiesType_name, int32(c))
		}
	}
	w.byte(']')
	w.lastCaps = append(w.lastCaps[:0], caps...)
	w.lastCapsJSON = append(w.lastCapsJSON[:0], w.buf[start:]...)
}

func (w *fastWriter) namespaces(ns *api.Namespaces) {
	first := true
	w.byte('{')
	w.namespace(&first, "uts", ns.GetUts())
	w.namespace(&first, "ipc", ns.GetIpc())
	w.namespace(&first, "mnt", ns.GetMnt())
	w.namespace(&first, "pid", ns.GetPid())
	w.namespace(&first, "pid_for_children", ns.GetPidForChildren())
	w.namespace(&first, "net", ns.GetNet())
	w.namespace(&first, "time", ns.GetTime())
	w.namespace(&first, "time_for_children", ns.GetTimeForChildren())
	w.namespace(&first, "cgroup", ns.GetCgroup())
	w.namespace(&first, "user", ns.GetUser())
	w.byte('}')
}

func (w *fastWriter) namespace(first *bool, name string, n *api.Namespace) {
	if n == nil {
		return
	}
	w.key(first, name)
	inner := true
	w.byte('{')
	w.uint32Field(&inner, "inum", n.GetInum())
	w.boolField(&inner, "is_host", n.GetIsHost())
	w.byte('}')
}

func (w *fastWriter) credentials(c *api.ProcessCredentials) {
	first := true
	w.byte('{')
	w.wrapperField(&first, "uid", c.GetUid())
	w.wrapperField(&first, "gid", c.GetGid())
	w.wrapperField(&first, "euid", c.GetEuid())
	w.wrapperField(&first, "egid", c.GetEgid())
	w.wrapperField(&first, "suid", c.GetSuid())
	w.wrapperField(&first, "sgid", c.GetSgid())
	w.wrapperField(&first, "fsuid", c.GetFsuid())
	w.wrapperField(&first, "fsgid", c.GetFsgid())
	if caps := c.GetCaps(); caps != nil {
		w.key(&first, "caps")
		w.capabilities(caps)
	}
	w.byte('}')
}

func (w *fastWriter) pod(p *api.Pod) {
	first := true
	w.byte('{')
	w.stringField(&first, "namespace", p.GetNamespace())
	w.stringField(&first, "name", p.GetName())
	w.stringField(&first, "uid", p.GetUid())
	if c := p.GetContainer(); c != nil {
		w.key(&first, "container")
		w.container(c)
	}
	if labels := p.GetPodLabels(); len(labels) > 0 {
		// protojson writes map entries sorted by key
		w.key(&first, "pod_labels")
		w.byte('{')
		for i, k := range slices.Sorted(maps.Keys(labels)) {
			if i > 0 {
				w.byte(',')
			}
			// keys are the user's: escaped like any string
			w.string(k)
			w.byte(':')
			w.string(labels[k])
		}
		w.byte('}')
	}
	w.stringField(&first, "workload", p.GetWorkload())
	w.stringField(&first, "workload_kind", p.GetWorkloadKind())
	w.byte('}')
}

func (w *fastWriter) container(c *api.Container) {
	first := true
	w.byte('{')
	w.stringField(&first, "id", c.GetId())
	w.stringField(&first, "name", c.GetName())
	if img := c.GetImage(); img != nil {
		w.key(&first, "image")
		inner := true
		w.byte('{')
		w.stringField(&inner, "id", img.GetId())
		w.stringField(&inner, "name", img.GetName())
		w.byte('}')
	}
	w.timestampField(&first, "start_time", c.GetStartTime())
	w.stringField(&first, "compose_project", c.GetComposeProject())
	w.stringField(&first, "compose_service", c.GetComposeService())
	w.byte('}')
}
