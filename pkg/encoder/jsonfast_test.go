package encoder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// reference is what the JSON encoder wrote before the fast path: protojson
// with proto names, compacted. The fast path must produce exactly this.
func reference(ev *api.GetEventsResponse) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// encodeLine runs the encoder under test on one event.
func encodeLine(ev *api.GetEventsResponse) ([]byte, error) {
	var b bytes.Buffer
	err := NewJSON(&b).Encode(ev)
	return b.Bytes(), err
}

// sameJSON checks that the encoder and protojson agree on ev: both fail,
// or both succeed with output that parses to the same value and, further,
// is byte for byte the same line.
func sameJSON(t testing.TB, ev *api.GetEventsResponse) {
	t.Helper()
	want, werr := reference(ev)
	got, gerr := encodeLine(ev)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("protojson error %v, encoder error %v\nevent: %v", werr, gerr, ev)
	}
	if werr != nil {
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("encoder wrote invalid JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("protojson wrote invalid JSON: %v\n%s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("parsed JSON differs\nencoder:   %s\nprotojson: %s", got, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("same value, different bytes\nencoder:   %s\nprotojson: %s", got, want)
	}
}

// realEvents are lines `tetra getevents -o json` printed on this project's
// host (exec, exit, and security_file_permission events of a policy on a
// file named with unicode and a quote), read back into events.
func realEvents(t testing.TB) []*api.GetEventsResponse {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "real_events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []*api.GetEventsResponse
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev := &api.GetEventsResponse{}
		if err := protojson.Unmarshal(sc.Bytes(), ev); err != nil {
			t.Fatalf("testdata line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func fullProcess(pid uint32, binary, args string) *api.Process {
	p := proc(pid, binary, args)
	p.Auid = wrapperspb.UInt32(math.MaxUint32)
	p.Tid = wrapperspb.UInt32(pid)
	p.Cap = &api.Capabilities{
		Permitted: []api.CapabilitiesType{api.CapabilitiesType_CAP_CHOWN, api.CapabilitiesType_DAC_OVERRIDE, api.CapabilitiesType_CAP_CHECKPOINT_RESTORE},
		Effective: []api.CapabilitiesType{api.CapabilitiesType_CAP_CHOWN},
	}
	p.Ns = &api.Namespaces{
		Uts: &api.Namespace{Inum: 4026531838, IsHost: true},
		Mnt: &api.Namespace{Inum: 4026532200},
		Pid: &api.Namespace{},
		// the rest left nil: left out
		User: &api.Namespace{Inum: 4026531837, IsHost: true},
	}
	p.ProcessCredentials = &api.ProcessCredentials{
		Uid: wrapperspb.UInt32(0), Gid: wrapperspb.UInt32(0), Euid: wrapperspb.UInt32(1000),
		Fsgid: wrapperspb.UInt32(math.MaxUint32),
	}
	p.CgroupId = math.MaxUint64
	p.InInitTree = wrapperspb.Bool(true)
	return p
}

// corpus covers what the encoder must get right: every event kind and
// argument kind, zero values (left out, except set oneof members), nil
// messages, escapes, unicode, timestamps of every precision and at the
// bounds, unknown enum values, and what protojson refuses.
func corpus(t testing.TB) []*api.GetEventsResponse {
	evs := realEvents(t)
	if tt, ok := t.(*testing.T); ok {
		evs = append(evs, events(tt)...)
	}
	ts := func(sec int64, nsec int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nsec}
	}
	var ctl strings.Builder
	for c := range 0x20 {
		ctl.WriteByte(byte(c))
	}
	weird := "\"quoted\" back\\slash <tag>&amp; \u2028\u2029 \ufffd emoji 🚀 日本語 \x7f" + ctl.String()
	full := fullProcess(100, "/usr/bin/ünïcode "+weird, weird)
	full.Container = &api.Container{Id: "abc", Name: "web", Image: &api.Image{Id: "sha256:1", Name: "nginx"},
		StartTime: ts(1, 500_000_000), ComposeProject: "p", ComposeService: "s"}
	withEvent := func(ev *api.GetEventsResponse, time *timestamppb.Timestamp) *api.GetEventsResponse {
		ev.Time = time
		return ev
	}
	allArgs := []*api.KprobeArgument{
		{Arg: &api.KprobeArgument_StringArg{StringArg: weird}, Label: "s"},
		{Arg: &api.KprobeArgument_StringArg{}},
		{Arg: &api.KprobeArgument_IntArg{IntArg: math.MinInt32}},
		{Arg: &api.KprobeArgument_IntArg{}},
		{Arg: &api.KprobeArgument_SizeArg{SizeArg: math.MaxUint64}},
		{Arg: &api.KprobeArgument_SizeArg{}},
		{Arg: &api.KprobeArgument_BytesArg{BytesArg: []byte{0, 1, 2, 0xff, 0xfe}}},
		{Arg: &api.KprobeArgument_BytesArg{BytesArg: []byte("ab")}},
		{Arg: &api.KprobeArgument_BytesArg{}},
		{Arg: &api.KprobeArgument_TruncatedBytesArg{TruncatedBytesArg: &api.KprobeTruncatedBytes{BytesArg: []byte{0, 0xff, 'x'}, OrigSize: math.MaxUint64}}},
		{Arg: &api.KprobeArgument_TruncatedBytesArg{TruncatedBytesArg: &api.KprobeTruncatedBytes{OrigSize: 5000}}},
		{Arg: &api.KprobeArgument_TruncatedBytesArg{TruncatedBytesArg: &api.KprobeTruncatedBytes{}}},
		{Arg: &api.KprobeArgument_TruncatedBytesArg{}},
		{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Mount: "/m", Path: "/p", Flags: "f", Permission: "rw"}}},
		{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{}}},
		{Arg: &api.KprobeArgument_PathArg{}},
		{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: weird}}},
		{Arg: &api.KprobeArgument_FileArg{}},
		{Arg: &api.KprobeArgument_LongArg{LongArg: math.MinInt64}},
		{Arg: &api.KprobeArgument_LongArg{}},
		{Arg: &api.KprobeArgument_UintArg{UintArg: math.MaxUint32}},
		{Arg: &api.KprobeArgument_UintArg{}},
		{Arg: &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP",
			Saddr: "10.0.0.1", Daddr: "1.1.1.1", Sport: 40000, Dport: 443, State: "TCP_SYN_SENT"}}},
		{Arg: &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{}}},
		{Arg: &api.KprobeArgument_SockArg{}},
		{Arg: &api.KprobeArgument_SockaddrArg{SockaddrArg: &api.KprobeSockaddr{Family: "AF_INET6", Addr: "::1", Port: 53}}},
		{Arg: &api.KprobeArgument_SockaddrArg{}},
		{Arg: &api.KprobeArgument_Int32ListArg{Int32ListArg: &api.KprobeInt32List{Values: []int32{3, 4, -1}}}},
		{Arg: &api.KprobeArgument_Int32ListArg{Int32ListArg: &api.KprobeInt32List{}}},
		{Arg: &api.KprobeArgument_Int32ListArg{}},
		{Arg: &api.KprobeArgument_ModuleArg{ModuleArg: &api.KernelModule{Name: weird, SignatureOk: wrapperspb.Bool(false),
			Tainted: []api.TaintedBitsType{api.TaintedBitsType_TAINT_OUT_OF_TREE_MODULE, api.TaintedBitsType_TAINT_UNSIGNED_MODULE, 1 << 20}}}},
		{Arg: &api.KprobeArgument_ModuleArg{ModuleArg: &api.KernelModule{Name: "m"}}},
		{Arg: &api.KprobeArgument_ModuleArg{}},
		{Arg: &api.KprobeArgument_DnsArg{DnsArg: &api.KprobeDns{QueryName: "www.example.com", QueryType: 28, QueryTypeStr: "AAAA",
			QueryClass: 1, TxId: 0x4242, Parsed: true}}, Label: "dns"},
		{Arg: &api.KprobeArgument_DnsArg{DnsArg: &api.KprobeDns{TxId: 7, Response: true}}},
		{Arg: &api.KprobeArgument_DnsArg{}},
		{Arg: &api.KprobeArgument_SkbArg{SkbArg: &api.KprobeSkb{Hash: 7, Len: 60, Priority: 1, Mark: 2, Saddr: "127.0.0.1", Daddr: "127.0.0.2",
			Sport: 4000, Dport: 53, Proto: 17, Protocol: "IPPROTO_UDP", Family: "AF_INET"}}},
		{Arg: &api.KprobeArgument_SkbArg{}},
		{Arg: &api.KprobeArgument_BpfAttrArg{BpfAttrArg: &api.KprobeBpfAttr{ProgType: "BPF_PROG_TYPE_KPROBE", InsnCnt: 12, ProgName: "p"}}},
		{Arg: &api.KprobeArgument_BpfMapArg{BpfMapArg: &api.KprobeBpfMap{MapType: "BPF_MAP_TYPE_HASH", KeySize: 4, ValueSize: 8, MaxEntries: 16, MapName: weird}}},
		{Arg: &api.KprobeArgument_BpfMapArg{}},
		{Arg: &api.KprobeArgument_PerfEventArg{PerfEventArg: &api.KprobePerfEvent{KprobeFunc: "security_file_open", Type: "kprobe", Config: 1, ProbeAddr: math.MaxUint64}}},
		{Arg: &api.KprobeArgument_PerfEventArg{}},
		{Arg: &api.KprobeArgument_LinuxBinprmArg{LinuxBinprmArg: &api.KprobeLinuxBinprm{Path: "/usr/bin/true", Flags: "deleted"}}},
		{Arg: &api.KprobeArgument_LinuxBinprmArg{}},
		{Arg: &api.KprobeArgument_ProcessCredentialsArg{ProcessCredentialsArg: &api.ProcessCredentials{Uid: wrapperspb.UInt32(0), Euid: wrapperspb.UInt32(1000),
			Caps: &api.Capabilities{Effective: []api.CapabilitiesType{api.CapabilitiesType_CAP_SYS_ADMIN}}}}},
		{Arg: &api.KprobeArgument_ProcessCredentialsArg{}},
		{Arg: &api.KprobeArgument_UserNsArg{UserNsArg: &api.UserNamespace{Level: wrapperspb.Int32(0), Uid: wrapperspb.UInt32(0),
			Gid: wrapperspb.UInt32(0), Ns: &api.Namespace{Inum: 4026531837, IsHost: true}}}},
		{Arg: &api.KprobeArgument_UserNsArg{UserNsArg: &api.UserNamespace{Level: wrapperspb.Int32(-1)}}},
		{Arg: &api.KprobeArgument_UserNsArg{}},
		{Arg: &api.KprobeArgument_SyscallId{SyscallId: &api.SyscallId{Id: 41, Abi: "i386"}}},
		{Arg: &api.KprobeArgument_SyscallId{SyscallId: &api.SyscallId{}}},
		{Arg: &api.KprobeArgument_SyscallId{}},
		{Arg: &api.KprobeArgument_KernelCapTArg{KernelCapTArg: "000001ffffffffff"}, Label: "caps"},
		{Arg: &api.KprobeArgument_CapInheritableArg{CapInheritableArg: "0000000000000000"}},
		{Arg: &api.KprobeArgument_CapPermittedArg{CapPermittedArg: "0000000000200000"}},
		{Arg: &api.KprobeArgument_CapEffectiveArg{CapEffectiveArg: "0000000000000001"}},
		{Label: "only a label"},
		{},
	}
	kp := kprobe(full, "security_file_permission", api.KprobeAction_KPROBE_ACTION_SIGKILL, allArgs...)
	kp.GetProcessKprobe().Parent = fullProcess(1, "/sbin/init", "")
	kp.GetProcessKprobe().Return = &api.KprobeArgument{Arg: &api.KprobeArgument_IntArg{IntArg: -1}}
	kp.GetProcessKprobe().Message = weird
	kp.GetProcessKprobe().Tags = []string{"a", "", weird}
	kp.GetProcessKprobe().Mechanism = "syscall-tracepoint"
	kp.GetProcessKprobe().ReturnAction = api.KprobeAction_KPROBE_ACTION_POST
	notInInitTree := exec(fullProcess(8, "/x", ""))
	notInInitTree.GetProcessExec().Process.InInitTree = wrapperspb.Bool(false)
	unknownReturnAction := kprobe(proc(1, "/x", ""), "f", 0)
	unknownReturnAction.GetProcessKprobe().ReturnAction = api.KprobeAction(78)
	unknownAction := kprobe(proc(1, "/x", ""), "f", api.KprobeAction(77))
	unknownCap := exec(fullProcess(5, "/x", ""))
	unknownCap.GetProcessExec().Process.Cap.Inheritable = []api.CapabilitiesType{api.CapabilitiesType(99), api.CapabilitiesType_CAP_CHOWN}
	badUTF8 := exec(proc(6, "/bin/\xff\xfe", ""))
	badUTF8Arg := kprobe(proc(6, "/bin/x", ""), "f", 0, &api.KprobeArgument{Arg: &api.KprobeArgument_StringArg{StringArg: "a\xc3"}})
	exitAll := exit(full, "SIGKILL", 137)
	exitAll.GetProcessExit().Time = ts(0, 1)

	evs = append(evs,
		kp, unknownAction, notInInitTree, unknownReturnAction, unknownCap, badUTF8, badUTF8Arg, exitAll,
		exec(fullProcess(7, "", "")),
		exec(&api.Process{}),
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{}}},
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessExec{}},
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessExit{}},
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{}},
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{Args: []*api.KprobeArgument{{}}}}},
		&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{Status: 1}}, NodeName: weird},
		withEvent(exec(nil), ts(0, 0)),
		withEvent(exec(nil), ts(0, 1_000_000)),
		withEvent(exec(nil), ts(0, 1_000)),
		withEvent(exec(nil), ts(0, 999_999_999)),
		withEvent(exec(nil), ts(-1, 5)),
		withEvent(exec(nil), ts(-62135596800, 0)),
		withEvent(exec(nil), ts(253402300799, 999_999_999)),
		withEvent(exec(nil), ts(-62135596801, 0)),
		withEvent(exec(nil), ts(253402300800, 0)),
		withEvent(exec(nil), ts(0, -1)),
		withEvent(exec(nil), ts(0, 1_000_000_000)),
		withEvent(exec(nil), timestamppb.New(time.Date(999, 1, 2, 3, 4, 5, 60_000_000, time.UTC))),
	)
	return evs
}

func TestFastJSONMatchesProtojson(t *testing.T) {
	for i, ev := range corpus(t) {
		t.Run("", func(t *testing.T) {
			t.Logf("corpus event %d", i)
			sameJSON(t, ev)
		})
	}
}

// One encoder over the whole corpus, as tetra runs it: what it keeps
// between events (the last capability list) must never leak into the next.
func TestFastJSONStream(t *testing.T) {
	var got, want bytes.Buffer
	enc := NewJSON(&got)
	evs := corpus(t)
	// and again in reverse, so each list follows different ones
	for i := range evs {
		evs = append(evs, evs[len(evs)-1-2*i])
	}
	for _, ev := range evs {
		line, err := reference(ev)
		if err != nil {
			continue
		}
		want.Write(line)
		if err := enc.Encode(ev); err != nil {
			t.Fatalf("Encode(%v): %v", ev, err)
		}
	}
	if got.String() != want.String() {
		g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d differs\nencoder:   %s\nprotojson: %s", i, g[i], w[i])
			}
		}
		t.Fatalf("got %d lines, want %d", len(g), len(w))
	}
}

// The fast path, not the fallback, serves the hot event kinds: otherwise
// the corpus test would pass while nothing got faster.
func TestFastJSONServesHotKinds(t *testing.T) {
	for _, ev := range realEvents(t) {
		if _, ok := newFastWriter().appendFastJSON(nil, ev); !ok {
			t.Errorf("fast encoder declined a real %T event", ev.GetEvent())
		}
	}
	for _, ev := range []*api.GetEventsResponse{{NodeName: "n"}, exec(proc(1, "/bin/\xff", ""))} {
		if _, ok := newFastWriter().appendFastJSON(nil, ev); ok {
			t.Errorf("fast encoder accepted %v; protojson must handle it", ev)
		}
	}
}

// populate sets every field of m, recursively, to a value that is not its
// zero value; for a oneof, the member chosen by pick. A field added to the
// API then shows up in protojson's output, and the fast encoder must know
// it too.
func populate(m protoreflect.Message, pick int, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(pick%od.Fields().Len()) != fd {
				continue
			}
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					populate(e.Message(), pick, depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, i))
				}
			}
		case fd.IsMap():
			// string maps (pod labels); keys out of order and escaped,
			// as protojson sorts and escapes them
			mp := m.Mutable(fd).Map()
			for _, k := range []string{"z \"key\"", "app", "é"} {
				mp.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(k+" value\n"))
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth > 4 {
				continue
			}
			if fd.Message().FullName() == "google.protobuf.Timestamp" {
				m.Set(fd, protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: 1700000000, Nanos: int32(123_000 * (i + 1))}).ProtoReflect()))
				continue
			}
			populate(m.Mutable(fd).Message(), pick, depth+1)
		default:
			m.Set(fd, scalar(fd, i))
		}
	}
}

func scalar(fd protoreflect.FieldDescriptor, i int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(string(fd.Name()) + " \"é\"\n")
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(1 + i%(vals.Len()-1)).Number())
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(-int32(i + 1))
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(uint32(i + 1))
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(-int64(i + 1))
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64(uint64(i) + 1<<40)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(i), 0xff})
	}
	panic("scalar kind not in the API yet: " + fd.Kind().String() + "; teach populate and the fast encoder")
}

func TestFastJSONCoversEveryField(t *testing.T) {
	for pick := range 8 {
		for _, kind := range []proto.Message{&api.ProcessExec{}, &api.ProcessExit{}, &api.ProcessKprobe{}} {
			populate(kind.ProtoReflect(), pick, 0)
			ev := &api.GetEventsResponse{NodeName: "n", Time: timestamppb.New(when)}
			switch k := kind.(type) {
			case *api.ProcessExec:
				ev.Event = &api.GetEventsResponse_ProcessExec{ProcessExec: k}
			case *api.ProcessExit:
				ev.Event = &api.GetEventsResponse_ProcessExit{ProcessExit: k}
			case *api.ProcessKprobe:
				ev.Event = &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: k}
			}
			if _, ok := newFastWriter().appendFastJSON(nil, ev); !ok {
				t.Fatalf("fast encoder declined a fully populated %T", kind)
			}
			sameJSON(t, ev)
		}
	}
}

// FuzzJSONMatchesProtojson decodes the input as a wire-format event and
// holds the encoder to protojson's output on it. name is put in as the
// process binary unchecked, so invalid UTF-8 (which proto.Unmarshal
// refuses) is fuzzed too.
func FuzzJSONMatchesProtojson(f *testing.F) {
	for _, ev := range corpus(f) {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			continue // invalid UTF-8: covered by the name argument
		}
		f.Add(raw, ev.GetProcessExec().GetProcess().GetBinary())
	}
	f.Add([]byte{}, "/bin/\xff")
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		ev := &api.GetEventsResponse{}
		if err := proto.Unmarshal(raw, ev); err != nil {
			return
		}
		if p := ev.GetProcessExec().GetProcess(); p != nil {
			p.Binary = name
		}
		if p := ev.GetProcessKprobe().GetProcess(); p != nil {
			p.Binary = name
		}
		sameJSON(t, ev)
	})
}

// BenchmarkJSON compares the encoder with protojson on real events: what
// `tetra getevents -o json` spends per event on encoding.
func BenchmarkJSON(b *testing.B) {
	evs := realEvents(b)
	b.Run("fast", func(b *testing.B) {
		var buf bytes.Buffer
		enc := NewJSON(&buf)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			buf.Reset()
			if err := enc.Encode(evs[i%len(evs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := reference(evs[i%len(evs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
