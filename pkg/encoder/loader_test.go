package encoder

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

func loaderEvent(path string, buildID []byte) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		NodeName: "node1",
		Time:     timestamppb.New(time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)),
		Event: &api.GetEventsResponse_ProcessLoader{ProcessLoader: &api.ProcessLoader{
			Process: &api.Process{ExecId: "bm9kZTE6MToy", Pid: wrapperspb.UInt32(42), Binary: "/usr/bin/python3", Arguments: "app.py"},
			Parent:  &api.Process{ExecId: "bm9kZTE6MTox", Pid: wrapperspb.UInt32(1), Binary: "/bin/sh"},
			Path:    path,
			Buildid: buildID,
		}},
	}
}

// A process_loader event's compact line, as Tetragon's: the process's
// binary without its arguments, the build id in hex, the file; no build id
// leaves its place out; a path's control bytes are escaped.
func TestCompactLoader(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	for _, c := range []struct {
		ev   *api.GetEventsResponse
		want string
	}{
		{loaderEvent("/usr/lib/x86_64-linux-gnu/libc.so.6", id),
			"🧬 loader  node1 /usr/bin/python3 deadbeef00112233445566778899aabbccddeeff /usr/lib/x86_64-linux-gnu/libc.so.6\n"},
		{loaderEvent("/tmp/lib.so", nil), "🧬 loader  node1 /usr/bin/python3 /tmp/lib.so\n"},
		{loaderEvent("/lib/evil\x1b[31m.so", id[:4]), "🧬 loader  node1 /usr/bin/python3 deadbeef /lib/evil\\x1b[31m.so\n"},
	} {
		var b bytes.Buffer
		if err := NewCompact(&b, CompactOptions{Color: ColorNever}).Encode(c.ev); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("got  %q\nwant %q", b.String(), c.want)
		}
	}
}

// The JSON line is protojson's, Tetragon's field names: process_loader with
// process, path, buildid (base64, as protojson writes bytes) and parent.
func TestJSONLoader(t *testing.T) {
	var b bytes.Buffer
	if err := NewJSON(&b).Encode(loaderEvent("/usr/lib/libz.so.1", []byte{0xde, 0xad, 0xbe, 0xef})); err != nil {
		t.Fatal(err)
	}
	want := `{"process_loader":{"process":{"exec_id":"bm9kZTE6MToy","pid":42,"binary":"/usr/bin/python3","arguments":"app.py"},"path":"/usr/lib/libz.so.1","buildid":"3q2+7w==","parent":{"exec_id":"bm9kZTE6MTox","pid":1,"binary":"/bin/sh"}},"node_name":"node1","time":"2026-12-05T07:00:00Z"}` + "\n"
	if b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}
