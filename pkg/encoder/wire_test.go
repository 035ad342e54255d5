package encoder

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// sameWireJSON checks that WireJSON on raw writes what JSON writes for the
// event decoded in full: both fail, or both write the same bytes.
func sameWireJSON(t testing.TB, enc *WireJSON, out *bytes.Buffer, raw []byte) {
	t.Helper()
	var want bytes.Buffer
	ev := &api.GetEventsResponse{}
	werr := proto.Unmarshal(raw, ev)
	if werr == nil {
		werr = NewJSON(&want).Encode(ev)
	}
	out.Reset()
	gerr := enc.EncodeWire(raw)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("full decode error %v, wire encoder error %v\nraw: %x", werr, gerr, raw)
	}
	if werr == nil && !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatalf("wire encoder differs\nwire: %s\nfull: %s", out.Bytes(), want.Bytes())
	}
}

// wireCorpus is the encoder corpus in wire bytes, and variants the splice
// must decline or get right: a process or parent repeated (merged by
// protobuf), two event fields, unknown fields, a process at another wire
// type.
func wireCorpus(t testing.TB) [][]byte {
	var out [][]byte
	for _, ev := range corpus(t) {
		raw, err := proto.Marshal(ev)
		if err != nil {
			continue // invalid UTF-8: FuzzWireJSONMatchesJSON feeds such bytes
		}
		out = append(out, raw)
	}
	p1, _ := proto.Marshal(&api.Process{Binary: "/bin/a", Pid: nil, ExecId: "x"})
	p2, _ := proto.Marshal(&api.Process{Arguments: "merged", Cwd: "/"})
	exec := func(inner []byte) []byte {
		b := protowire.AppendTag(nil, 1000, protowire.BytesType)
		b = protowire.AppendString(b, "node")
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendBytes(b, inner)
	}
	field := func(b []byte, n protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
	}
	out = append(out,
		exec(field(field(nil, 1, p1), 1, p2)),                                              // process twice: merged
		exec(field(field(nil, 2, p1), 2, p2)),                                              // parent twice
		append(exec(field(nil, 1, p1)), exec(field(nil, 2, p2))...),                        // the event twice: merged
		exec(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5)), // process at a varint
		exec(field(field(nil, 1, p1), 77, []byte("unknown"))),
		exec(field(nil, 1, []byte{0xff})), // malformed process
		exec(field(nil, 1, nil)),          // empty process
		[]byte{0x0a, 0x05, 0x0a},          // truncated
	)
	return out
}

func TestWireJSONMatchesJSON(t *testing.T) {
	var out bytes.Buffer
	enc := NewWireJSON(&out)
	for _, raw := range wireCorpus(t) {
		sameWireJSON(t, enc, &out, raw)
	}
	// and again, with every process's JSON already cached
	for _, raw := range wireCorpus(t) {
		sameWireJSON(t, enc, &out, raw)
	}
}

// TestWireJSONSplices: the hot kinds take the splice, not the full decode.
func TestWireJSONSplices(t *testing.T) {
	enc := NewWireJSON(&bytes.Buffer{})
	p := fullProcess(7, "/bin/cat", "x")
	for _, ev := range []*api.GetEventsResponse{
		exec(p), exit(p, "", 1), kprobe(p, "security_file_permission", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/passwd")),
	} {
		ev.Time = timestamppb.New(when)
		raw, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := enc.splice(nil, raw); !ok {
			t.Fatalf("no splice for %T", ev.GetEvent())
		}
	}
	// the process and the helpers' parent, each decoded once; the rest
	// of each of the three events
	if len(enc.procs) != 2 || len(enc.rests) != 3 {
		t.Fatalf("%d processes and %d event bodies cached, want 2 and 3", len(enc.procs), len(enc.rests))
	}
}

func FuzzWireJSONMatchesJSON(f *testing.F) {
	for _, raw := range wireCorpus(f) {
		f.Add(raw)
	}
	var out bytes.Buffer
	enc := NewWireJSON(&out)
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameWireJSON(t, enc, &out, raw)
	})
}

func BenchmarkWireJSON(b *testing.B) {
	var raws [][]byte
	for _, ev := range realEvents(b) {
		raw, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, raw)
	}
	b.Run("wire", func(b *testing.B) {
		var buf bytes.Buffer
		enc := NewWireJSON(&buf)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			buf.Reset()
			if err := enc.EncodeWire(raws[i%len(raws)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal+fast", func(b *testing.B) {
		var buf bytes.Buffer
		enc := NewJSON(&buf)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			buf.Reset()
			ev := &api.GetEventsResponse{}
			if err := proto.Unmarshal(raws[i%len(raws)], ev); err != nil {
				b.Fatal(err)
			}
			if err := enc.Encode(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
