package eventwire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// fill sets every field of m, recursively, to a value that is not its zero
// value; for a oneof, the member chosen by pick. A field added to the API
// is then in the bytes compared.
func fill(m protoreflect.Message, pick, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && od.Fields().Get(pick%od.Fields().Len()) != fd {
			continue
		}
		switch {
		case fd.IsMap():
			// no maps in events: their order would make bytes differ run to run
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 3 {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fill(e.Message(), pick+1, depth+1)
					l.Append(e)
				} else {
					l.Append(value(fd, i))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 5 {
				fill(m.Mutable(fd).Message(), pick, depth+1)
			}
		default:
			m.Set(fd, value(fd, i))
		}
	}
}

func value(fd protoreflect.FieldDescriptor, i int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(string(fd.Name()) + " é")
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(-int32(i + 1))
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(uint32(i + 300))
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(-int64(i + 1))
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64(uint64(i) + 1<<40)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(i), 0xff})
	}
	panic("kind not in the API yet: " + fd.Kind().String())
}

// events builds, for every member of GetEventsResponse's event oneof,
// events filled in full, with an empty and an absent process or parent,
// and with unknown fields.
func events(t *testing.T) map[string]*api.GetEventsResponse {
	t.Helper()
	out := map[string]*api.GetEventsResponse{}
	oneof := (&api.GetEventsResponse{}).ProtoReflect().Descriptor().Oneofs().ByName("event")
	for i := range oneof.Fields().Len() {
		fd := oneof.Fields().Get(i)
		for pick := range 4 {
			ev := &api.GetEventsResponse{}
			fill(ev.ProtoReflect(), i, 0)
			if ev.ProtoReflect().WhichOneof(oneof) != fd {
				t.Fatalf("fill chose %v, want %s", ev.ProtoReflect().WhichOneof(oneof), fd.Name())
			}
			inner := ev.ProtoReflect().Get(fd).Message()
			pf, qf := inner.Descriptor().Fields().ByName("process"), inner.Descriptor().Fields().ByName("parent")
			name := string(fd.Name())
			switch pick {
			case 1:
				inner.Clear(qf)
				inner.Set(pf, protoreflect.ValueOfMessage((&api.Process{}).ProtoReflect()))
				name += "/empty process, no parent"
			case 2:
				inner.Clear(pf)
				name += "/no process"
			case 3:
				inner.SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 9999, protowire.BytesType), "inner"))
				ev.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 5000, protowire.VarintType), 7))
				name += "/unknown fields"
			}
			out[name] = ev
		}
	}
	out["no event"] = &api.GetEventsResponse{NodeName: "n", Time: timestamppb.Now()}
	out["exec of the agent's shape"] = &api.GetEventsResponse{
		Event: &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{
			Process: &api.Process{ExecId: "aWQ=", Pid: wrapperspb.UInt32(7), Binary: "/bin/true", Flags: "execve"},
		}},
		NodeName: "node", Time: timestamppb.Now(),
	}
	return out
}

// TestSplicedEqualsMarshal: for every event type, the bytes spliced from a
// process and parent marshalled apart are proto.Marshal's bytes of the
// whole event, and decode to the same event.
func TestSplicedEqualsMarshal(t *testing.T) {
	for name, ev := range events(t) {
		t.Run(name, func(t *testing.T) {
			want, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var proc, parent []byte
			if m, ok := ev.ProtoReflect().WhichOneof(ev.ProtoReflect().Descriptor().Oneofs().ByName("event")), true; ok && m != nil {
				inner := ev.ProtoReflect().Get(m).Message()
				// by name: ProcessLoader's parent is not at ParentField
				if p, ok := inner.Get(inner.Descriptor().Fields().ByName("process")).Message().Interface().(*api.Process); ok && inner.Has(inner.Descriptor().Fields().ByName("process")) {
					if proc, err = Process(p); err != nil {
						t.Fatal(err)
					}
				}
				if p, ok := inner.Get(inner.Descriptor().Fields().ByName("parent")).Message().Interface().(*api.Process); ok && inner.Has(inner.Descriptor().Fields().ByName("parent")) {
					if parent, err = Process(p); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, c := range []struct {
				what         string
				proc, parent []byte
			}{{"cached process bytes", proc, parent}, {"marshalled here", nil, nil}} {
				prefix := []byte("kept")
				got, err := Marshal(append([]byte(nil), prefix...), ev, c.proc, c.parent)
				if err != nil {
					t.Fatalf("%s: %v", c.what, err)
				}
				if !bytes.HasPrefix(got, prefix) {
					t.Fatalf("%s: the buffer's bytes were overwritten", c.what)
				}
				if got = got[len(prefix):]; !bytes.Equal(got, want) {
					t.Fatalf("%s: spliced bytes differ from proto.Marshal\nspliced: %x\nwant:    %x", c.what, got, want)
				}
				back := &api.GetEventsResponse{}
				if err := proto.Unmarshal(got, back); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(back, ev) {
					t.Fatalf("%s: decodes to another event", c.what)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	p := &api.Process{}
	fill(p.ProtoReflect(), 0, 1)
	ev := &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{
		Process: p, Parent: p, FunctionName: "security_file_permission", PolicyName: "p",
		Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: "/tmp/x"}}}, {Arg: &api.KprobeArgument_IntArg{IntArg: 4}}},
	}}, NodeName: "node", Time: timestamppb.Now()}
	proc, _ := Process(p)
	b.Run("spliced", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = Marshal(buf[:0], ev, proc, proc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTopFieldsEqualMarshal: node_name and time, which the hot path writes
// by hand, come out as proto.Marshal writes them for every shape of value
// (absent, zero, negative, extreme, with unknown fields), and a node name
// proto.Marshal rejects is rejected too.
func TestTopFieldsEqualMarshal(t *testing.T) {
	withUnknown := &timestamppb.Timestamp{Seconds: 5}
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 77, protowire.VarintType), 1))
	times := []*timestamppb.Timestamp{
		nil, {}, {Seconds: 1}, {Nanos: 1}, {Seconds: -1, Nanos: -999999999}, {Seconds: 1 << 62, Nanos: 999999999},
		{Seconds: -(1 << 62)}, {Nanos: -1}, timestamppb.Now(), withUnknown,
	}
	for _, name := range []string{"", "n", "node-ü", "bad\xff"} {
		for i, tm := range times {
			ev := &api.GetEventsResponse{NodeName: name, Time: tm, Event: &api.GetEventsResponse_ProcessKprobe{
				ProcessKprobe: &api.ProcessKprobe{Process: &api.Process{Binary: "/bin/cat"}, FunctionName: "f"},
			}}
			want, werr := proto.Marshal(ev)
			got, err := Marshal(nil, ev, nil, nil)
			if (err != nil) != (werr != nil) {
				t.Fatalf("node %q, time %d: error %v, proto.Marshal's %v", name, i, err, werr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("node %q, time %d: spliced bytes differ from proto.Marshal\nspliced: %x\nwant:    %x", name, i, got, want)
			}
		}
	}
}
