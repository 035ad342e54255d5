package encoder

import (
	"bytes"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// A process_usdt event's compact line, as Tetragon's: the probe's binary,
// provider and name (no arguments).
func TestCompactUsdt(t *testing.T) {
	var b bytes.Buffer
	ev := &api.GetEventsResponse{NodeName: "node1", Event: &api.GetEventsResponse_ProcessUsdt{ProcessUsdt: &api.ProcessUsdt{
		Process: &api.Process{Binary: "/usr/bin/app"},
		Path:    "/usr/bin/app", Provider: "app", Name: "request",
		Args: []*api.KprobeArgument{{Arg: &api.KprobeArgument_IntArg{IntArg: 5}}},
	}}}
	if err := NewCompact(&b, CompactOptions{Color: ColorNever}).Encode(ev); err != nil {
		t.Fatal(err)
	}
	if want := "🕵️ usdt    node1 /usr/bin/app /usr/bin/app app request\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
