package eventwire

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// kprobeArgs are arguments of every kind appendKprobeRest writes, at zero
// and extreme values, with and without labels.
func kprobeArgs() []*api.KprobeArgument {
	long := strings.Repeat("p", 200) // a length of two varint bytes
	return []*api.KprobeArgument{
		{Arg: &api.KprobeArgument_StringArg{StringArg: "s é"}, Label: "l"},
		{Arg: &api.KprobeArgument_StringArg{}},
		{Arg: &api.KprobeArgument_IntArg{IntArg: math.MinInt32}},
		{Arg: &api.KprobeArgument_IntArg{IntArg: -1}, Label: "neg"},
		{Arg: &api.KprobeArgument_IntArg{}},
		{Arg: &api.KprobeArgument_SizeArg{SizeArg: math.MaxUint64}},
		{Arg: &api.KprobeArgument_SizeArg{}},
		{Arg: &api.KprobeArgument_BytesArg{BytesArg: []byte{0, 0xff}}},
		{Arg: &api.KprobeArgument_BytesArg{}},
		{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Mount: "/m", Path: long, Flags: "unreachable", Permission: "rw"}}},
		{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{}}},
		{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: "/etc/passwd"}}, Label: "file"},
		{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: strings.Repeat("f", 20000)}}},
		{Arg: &api.KprobeArgument_LongArg{LongArg: math.MinInt64}},
		{Arg: &api.KprobeArgument_LongArg{}},
		{Arg: &api.KprobeArgument_UintArg{UintArg: math.MaxUint32}},
		{Arg: &api.KprobeArgument_UintArg{}},
		{Label: "no value"},
	}
}

// TestKprobeRestEqualsMarshal: a process_kprobe event whose fields the
// hand-written path covers comes out as proto.Marshal writes it, through
// that path; one it does not cover comes out the same through protobuf's.
func TestKprobeRestEqualsMarshal(t *testing.T) {
	p := &api.Process{Binary: "/bin/cat", ExecId: "x"}
	args := kprobeArgs()
	withUnknown := &api.KprobeArgument{Arg: &api.KprobeArgument_IntArg{IntArg: 1}}
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	fileUnknown := &api.KprobeFile{Path: "/x"}
	fileUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	full := &api.ProcessKprobe{Process: p, Parent: p, FunctionName: "security_file_permission", Args: args, Return: args[3],
		Action: api.KprobeAction_KPROBE_ACTION_SIGKILL, PolicyName: "pol", ReturnAction: api.KprobeAction_KPROBE_ACTION_POST,
		Message: strings.Repeat("m", 300), Tags: []string{"a", "", "c"}, Data: args[:4], Mechanism: "kprobe"}
	for _, c := range []struct {
		name string
		k    *api.ProcessKprobe
		hand bool
	}{
		{"every field", full, true},
		{"empty", &api.ProcessKprobe{}, true},
		{"no parent", &api.ProcessKprobe{Process: p, FunctionName: "f"}, true},
		{"one argument", &api.ProcessKprobe{Process: p, Parent: p, FunctionName: "fd_install", Args: args[11:12]}, true},
		{"negative action", &api.ProcessKprobe{Action: -5}, true},
		{"a kind written by protobuf", &api.ProcessKprobe{Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{Family: "AF_INET"}}}}}, false},
		{"a nil argument member", &api.ProcessKprobe{Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_FileArg{}}}}, false},
		{"stack trace", &api.ProcessKprobe{KernelStackTrace: []*api.StackTraceEntry{{Address: 1}}}, false},
		{"unknown in an argument", &api.ProcessKprobe{Args: []*api.KprobeArgument{withUnknown}}, false},
		{"unknown in a file", &api.ProcessKprobe{Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_FileArg{FileArg: fileUnknown}}}}, false},
		{"a string that is not UTF-8", &api.ProcessKprobe{FunctionName: "f", Tags: []string{"ok", "bad\xff"}}, false},
		{"an argument that is not UTF-8", &api.ProcessKprobe{Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: "\xc3"}}}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: c.k}, NodeName: "n", Time: timestamppb.Now()}
			if _, hand := appendKprobeRest([]byte("prefix"), c.k); hand != c.hand {
				t.Fatalf("written by hand: %v, want %v", hand, c.hand)
			}
			want, werr := proto.Marshal(ev)
			got, err := Marshal([]byte("prefix"), ev, nil, nil)
			if (err != nil) != (werr != nil) {
				t.Fatalf("error %v, proto.Marshal's %v", err, werr)
			}
			if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("bytes differ from proto.Marshal's\ngot:  %x\nwant: prefix %x", got, want)
			}
		})
	}
}

// FuzzKprobeRest compares the hand-written bytes with proto.Marshal's for
// events built from the input: every argument kind, any strings (UTF-8 or
// not), any integers.
func FuzzKprobeRest(f *testing.F) {
	f.Add("security_file_permission", "/etc/passwd", "label", int64(4), uint8(7), uint8(2))
	f.Add("", "", "", int64(-1), uint8(0), uint8(0))
	f.Add("f", strings.Repeat("x", 130), "\xff", int64(math.MinInt64), uint8(255), uint8(9))
	f.Fuzz(func(t *testing.T, fn, s, label string, n int64, kinds, count uint8) {
		var args []*api.KprobeArgument
		for i := range int(count % 8) {
			a := &api.KprobeArgument{Label: label}
			switch (int(kinds) + i) % 10 {
			case 0:
				a.Arg = &api.KprobeArgument_StringArg{StringArg: s}
			case 1:
				a.Arg = &api.KprobeArgument_IntArg{IntArg: int32(n)}
			case 2:
				a.Arg = &api.KprobeArgument_SizeArg{SizeArg: uint64(n)}
			case 3:
				a.Arg = &api.KprobeArgument_BytesArg{BytesArg: []byte(s)}
			case 4:
				a.Arg = &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Path: s, Flags: label}}
			case 5:
				a.Arg = &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Mount: label, Path: s}}
			case 6:
				a.Arg = &api.KprobeArgument_LongArg{LongArg: n}
			case 7:
				a.Arg = &api.KprobeArgument_UintArg{UintArg: uint32(n)}
			case 8:
				a.Arg = &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{Daddr: s}}
			}
			args = append(args, a)
		}
		k := &api.ProcessKprobe{Process: &api.Process{Binary: s}, FunctionName: fn, Args: args, PolicyName: label,
			Action: api.KprobeAction(n % 16), Tags: []string{label, fn}, Message: s}
		if len(args) > 0 {
			k.Return, k.Data = args[0], args[len(args)/2:]
		}
		ev := &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: k}, NodeName: "node"}
		want, werr := proto.Marshal(ev)
		got, err := Marshal(nil, ev, nil, nil)
		if (err != nil) != (werr != nil) {
			t.Fatalf("error %v, proto.Marshal's %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("bytes differ from proto.Marshal's\ngot:  %x\nwant: %x", got, want)
		}
	})
}
