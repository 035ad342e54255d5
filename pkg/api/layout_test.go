package api_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/api/schema"
)

func tetragonLayout(t *testing.T) *schema.Layout {
	t.Helper()
	l, err := schema.Tetragon()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The generated API is Tetragon's on the wire: every shared field, enum
// value and RPC as tetragon-fields.txt has it, every other field private.
func TestTetragonLayout(t *testing.T) {
	for _, err := range tetragonLayout(t).CheckFile(api.File_tetragon_proto) {
		t.Error(err)
	}
}

// The check finds each kind of difference: a copy of the API with one
// change must fail it with the message naming the change.
func TestTetragonLayoutCatchesDifferences(t *testing.T) {
	l := tetragonLayout(t)
	field := func(fd *descriptorpb.FileDescriptorProto, msg, name string) *descriptorpb.FieldDescriptorProto {
		for _, m := range fd.MessageType {
			if m.GetName() == msg {
				for _, f := range m.Field {
					if f.GetName() == name {
						return f
					}
				}
			}
		}
		t.Fatalf("no field %s.%s", msg, name)
		return nil
	}
	for _, tc := range []struct {
		name   string
		change func(fd *descriptorpb.FileDescriptorProto)
		want   []string
	}{
		{"the old message number", func(fd *descriptorpb.FileDescriptorProto) {
			// (12, the old tags, is user_stack_trace now)
			field(fd, "ProcessKprobe", "tags").Number = proto.Int32(13)
			field(fd, "ProcessKprobe", "message").Number = proto.Int32(11)
		}, []string{"tetragon.ProcessKprobe.message (11): Tetragon's number is 10", "tetragon.ProcessKprobe.tags (13): Tetragon's number is 11"}},
		{"a bool where Tetragon has BoolValue", func(fd *descriptorpb.FileDescriptorProto) {
			f := field(fd, "Process", "in_init_tree")
			f.Type, f.TypeName = descriptorpb.FieldDescriptorProto_TYPE_BOOL.Enum(), nil
		}, []string{"tetragon.Process.in_init_tree (20): type bool, Tetragon's is google.protobuf.BoolValue"}},
		{"a private field below the range", func(fd *descriptorpb.FileDescriptorProto) {
			field(fd, "ProcessKprobe", "mechanism").Number = proto.Int32(100)
		}, []string{"tetragon.ProcessKprobe.mechanism (100): not Tetragon's, and not in the private range"}},
		{"a repeated field made singular", func(fd *descriptorpb.FileDescriptorProto) {
			field(fd, "ProcessLsm", "tags").Label = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
		}, []string{"tetragon.ProcessLsm.tags (9): repeated=false, Tetragon's repeated=true"}},
		{"an enum value of ours", func(fd *descriptorpb.FileDescriptorProto) {
			for _, e := range fd.EnumType {
				if e.GetName() == "KprobeAction" {
					e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String("KPROBE_ACTION_OURS"), Number: proto.Int32(99)})
				}
			}
		}, []string{"enum tetragon.KprobeAction: value KPROBE_ACTION_OURS is not Tetragon's"}},
		{"a request message of ours", func(fd *descriptorpb.FileDescriptorProto) {
			fd.Service[0].Method[5].InputType = proto.String(".tetragon.GetVersionRequest")
		}, []string{"rpc tetragon.FineGuidanceSensors."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdp := protodesc.ToFileDescriptorProto(api.File_tetragon_proto)
			tc.change(fdp)
			fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, err := range l.CheckFile(fd) {
				msgs = append(msgs, err.Error())
			}
			ok := len(msgs) == len(tc.want)
			for i := 0; ok && i < len(msgs); i++ {
				ok = strings.Contains(msgs[i], tc.want[i])
			}
			if !ok {
				t.Fatalf("errors %q, want ones containing %q", msgs, tc.want)
			}
		})
	}
}

// Decode reads bytes as a Tetragon client: what tetra v1.7 could not
// read fails it, private fields pass.
func TestDecodeAsTetragon(t *testing.T) {
	l := tetragonLayout(t)
	bytesField := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	kprobe := func(inner ...[]byte) []byte {
		var b []byte
		for _, in := range inner {
			b = append(b, in...)
		}
		return bytesField(9, b)
	}
	for _, tc := range []struct {
		name string
		msg  protoreflect.FullName
		b    []byte
		want string // "" for no error
	}{
		{"tags at the old number 12", "tetragon.GetEventsResponse", kprobe(bytesField(12, []byte("a.tag"))), "cannot parse invalid wire-format data"},
		{"a private string", "tetragon.GetEventsResponse", kprobe(bytesField(10000, []byte("syscall-tracepoint"))), ""},
		{"an unknown field", "tetragon.GetEventsResponse", kprobe(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)),
			"tetragon.GetEventsResponse.process_kprobe: field 99 (wire type 0) is not in Tetragon's schema"},
		{"a varint where Tetragon has BoolValue", "tetragon.GetEventsResponse",
			bytesField(1, bytesField(1, protowire.AppendVarint(protowire.AppendTag(nil, 20, protowire.VarintType), 1))),
			"tetragon.GetEventsResponse.process_exec.process.in_init_tree (20): wire type 0 does not fit Tetragon's google.protobuf.BoolValue"},
		{"a policy name where Tetragon has the id", "tetragon.ListTracingPoliciesResponse",
			bytesField(1, bytesField(1, []byte("\xffname"))), "wire type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Decode(tc.msg, tc.b)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Decode: %v, want %q", err, tc.want)
			}
		})
	}
}

// Every event kind and RPC response the agent builds, with every field set,
// decodes as Tetragon's with only private fields unknown.
func TestOurMessagesDecodeAsTetragon(t *testing.T) {
	l := tetragonLayout(t)
	p := &api.Process{
		ExecId: "id", Pid: wrapperspb.UInt32(1), Uid: wrapperspb.UInt32(0), Cwd: "/", Binary: "/bin/cat", Arguments: "x",
		Flags: "execve", StartTime: timestamppb.Now(), Auid: wrapperspb.UInt32(4294967295), Docker: "abc", ParentExecId: "pid",
		Cap:                &api.Capabilities{Permitted: []api.CapabilitiesType{api.CapabilitiesType_CAP_BPF}},
		Ns:                 &api.Namespaces{Uts: &api.Namespace{Inum: 1, IsHost: true}},
		Tid:                wrapperspb.UInt32(1),
		ProcessCredentials: &api.ProcessCredentials{Uid: wrapperspb.UInt32(0)},
		InInitTree:         wrapperspb.Bool(false),
		Container: &api.Container{Id: "abc", Name: "web", Image: &api.Image{Id: "i", Name: "n"}, StartTime: timestamppb.Now(),
			ComposeProject: "p", ComposeService: "s"},
		CgroupId: 7,
	}
	args := []*api.KprobeArgument{
		{Arg: &api.KprobeArgument_StringArg{StringArg: "s"}, Label: "l"},
		{Arg: &api.KprobeArgument_IntArg{IntArg: -1}},
		{Arg: &api.KprobeArgument_SizeArg{SizeArg: 1}},
		{Arg: &api.KprobeArgument_BytesArg{BytesArg: []byte{1}}},
		{Arg: &api.KprobeArgument_TruncatedBytesArg{TruncatedBytesArg: &api.KprobeTruncatedBytes{BytesArg: []byte{1}, OrigSize: 4097}}},
		{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Mount: "m", Path: "p", Flags: "f", Permission: "r"}}},
		{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Mount: "m", Path: "p", Flags: "f", Permission: "r"}}},
		{Arg: &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP",
			Saddr: "1.1.1.1", Daddr: "2.2.2.2", Sport: 1, Dport: 2, State: "TCP_SYN_SENT"}}},
		{Arg: &api.KprobeArgument_LongArg{LongArg: -2}},
		{Arg: &api.KprobeArgument_UintArg{UintArg: 3}},
		{Arg: &api.KprobeArgument_SockaddrArg{SockaddrArg: &api.KprobeSockaddr{Family: "AF_INET", Addr: "1.1.1.1", Port: 53}}},
	}
	action := api.KprobeAction_KPROBE_ACTION_SIGKILL
	events := []*api.GetEventsResponse{
		{Event: &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: p, Parent: p}}},
		{Event: &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{Process: p, Parent: p, Signal: "SIGKILL", Status: 9, Time: timestamppb.Now()}}},
		{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{Process: p, Parent: p, FunctionName: "f", Args: args,
			Return: args[1], Action: action, PolicyName: "pol", ReturnAction: api.KprobeAction_KPROBE_ACTION_POST, Message: "m", Tags: []string{"a", "b"}, Mechanism: "kprobe"}}},
		{Event: &api.GetEventsResponse_ProcessTracepoint{ProcessTracepoint: &api.ProcessTracepoint{Process: p, Parent: p, Subsys: "s", Event: "e", Args: args,
			PolicyName: "pol", Action: action, Message: "m", Tags: []string{"a"}, Mechanism: "tracepoint"}}},
		{Event: &api.GetEventsResponse_ProcessUprobe{ProcessUprobe: &api.ProcessUprobe{Process: p, Parent: p, Path: "/p", Symbol: "s", PolicyName: "pol",
			Message: "m", Args: args, Tags: []string{"a"}, Action: action, Mechanism: "uprobe"}}},
		{Event: &api.GetEventsResponse_ProcessUsdt{ProcessUsdt: &api.ProcessUsdt{Process: p, Parent: p, Path: "/p", Provider: "pr", Name: "n",
			PolicyName: "pol", Message: "m", Args: args, Tags: []string{"a"}, Action: action, Mechanism: "uprobe"}}},
		{Event: &api.GetEventsResponse_ProcessLsm{ProcessLsm: &api.ProcessLsm{Process: p, Parent: p, FunctionName: "f", PolicyName: "pol",
			Message: "m", Args: args, Action: action, Tags: []string{"a"}, Mechanism: "lsm"}}},
	}
	for _, ev := range events {
		ev.NodeName, ev.Time = "node", timestamppb.Now()
	}
	all := []struct {
		name protoreflect.FullName
		m    proto.Message
	}{
		{"tetragon.GetHealthStatusResponse", &api.GetHealthStatusResponse{
			HealthStatus: []*api.HealthStatus{{Event: api.HealthStatusType_HEALTH_STATUS_TYPE_STATUS, Status: api.HealthStatusResult_HEALTH_STATUS_RUNNING, Details: "running"}},
			Agent:        &api.AgentStatus{Ready: true, Losses: &api.LossCounters{KernelRingbuf: 1}, KernelFeatures: map[string]bool{"kprobe": false}}}},
		{"tetragon.GetVersionResponse", &api.GetVersionResponse{Version: "v"}},
		{"tetragon.ListTracingPoliciesResponse", &api.ListTracingPoliciesResponse{Loads: 1, LoadErrors: 2, Policies: []*api.TracingPolicyStatus{{
			Id: 1, Name: "n", Info: "api", Sensors: []string{"generic_kprobe"}, Enabled: true, Error: "e", State: api.TracingPolicyState_TP_STATE_ENABLED,
			KernelMemoryBytes: 1, Mode: api.TracingPolicyMode_TP_MODE_ENFORCE, Source: "api", Enforces: true,
			Hooks: []*api.TracingPolicyHook{{Call: "c", Mechanism: "kprobe", Calls: 1, Matched: 1, Posted: 1, Signals: 1, Drops: 1, MemoryBytes: 1}}}}}},
		{"tetragon.AddTracingPolicyResponse", &api.AddTracingPolicyResponse{Name: "n"}},
		{"tetragon.GetEventsRequest", &api.GetEventsRequest{AllowList: []*api.Filter{{BinaryRegex: []string{"x"}, Pid: []uint32{1},
			EventSet: []api.EventType{api.EventType_PROCESS_KPROBE}, PodRegex: []string{"p"}, ArgumentsRegex: []string{"a"}, PolicyNames: []string{"n"},
			ParentBinaryRegex: []string{"b"}, ContainerNameRegex: []string{"c"}, InContainer: wrapperspb.Bool(true)}}}},
	}
	for _, ev := range events {
		all = append(all, struct {
			name protoreflect.FullName
			m    proto.Message
		}{"tetragon.GetEventsResponse", ev})
	}
	for _, c := range all {
		b, err := proto.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Decode(c.name, b); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
