package hookevent

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/eventwire"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// realKprobe is the first process_kprobe event of the encoder's real
// events (a read of a file by cat, with its process and parent in full).
func realKprobe(tb testing.TB) *api.ProcessKprobe {
	f, err := os.Open("../encoder/testdata/real_events.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), `{"process_kprobe"`) {
			continue
		}
		var ev api.GetEventsResponse
		if err := protojson.Unmarshal(sc.Bytes(), &ev); err != nil {
			tb.Fatal(err)
		}
		return ev.GetProcessKprobe()
	}
	tb.Fatal("no process_kprobe event in real_events.jsonl")
	return nil
}

// BenchmarkHookEvent is the agent's work per matching record of a file
// hook (security_file_permission with a file and an int argument): the
// event built from the record, wrapped for the bus with its process's
// and parent's cached wire bytes, and encoded once, as the agent does for
// its subscribers.
func BenchmarkHookEvent(b *testing.B) { benchmarkHookEvent(b, 0) }

// BenchmarkHookEventQueued is BenchmarkHookEvent with the last 10,000
// events kept alive, as a full subscriber queue (--subscriber-queue-size's
// default) keeps them under a burst: the live heap the collector marks
// every cycle. Run with GOGC=100, 200 and 400 it shows what --gc-percent
// saves (docs/performance.md, issue 16).
func BenchmarkHookEventQueued(b *testing.B) { benchmarkHookEvent(b, 10000) }

func benchmarkHookEvent(b *testing.B, queued int) {
	k := realKprobe(b)
	proc, parent := k.GetProcess(), k.GetParent()
	procWire, err := eventwire.Process(proc)
	if err != nil {
		b.Fatal(err)
	}
	parentWire, err := eventwire.Process(parent)
	if err != nil {
		b.Fatal(err)
	}
	h := &Hook{
		Kind: KindKprobe, Policy: "file-monitoring", Call: "security_file_permission", Mechanism: "kprobe",
		Args: []tracingpolicy.ArgSpec{{Index: 0, Type: "file"}, {Index: 1, Type: "int"}},
	}
	r := &observer.HookRecord{Ktime: 1e9, Pid: proc.GetPid().GetValue(), Tid: proc.GetPid().GetValue(), HookID: 1,
		Ints: [5]int64{0, 4}, Strs: [2]string{"/tmp/tb/data/f"}}
	bld := NewBuilder(zerolog.Nop(), nil)
	now := timestamppb.Now()
	queue := make([]*eventbus.Event, queued)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ev, ok := bld.Event(h, r, func() (*api.Process, *api.Process) { return proc, parent })
		if !ok {
			b.Fatal("rate limited")
		}
		ev.NodeName, ev.Time = "node", timestamppb.New(now.AsTime())
		e := eventbus.NewEvent(ev, procWire, parentWire)
		if _, err := e.Wire(); err != nil {
			b.Fatal(err)
		}
		if queued > 0 {
			queue[i] = e
			i = (i + 1) % queued
		}
	}
}
