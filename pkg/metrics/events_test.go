package metrics

import (
	"reflect"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// Policy events count by policy and hook label, Tetragon's labels, and two
// hooks whose strings join into one label are one series, their sum.
func TestCountHooks(t *testing.T) {
	var c EventCounter
	count := func(n int, ev *api.GetEventsResponse) {
		for range n {
			c.Count(ev)
		}
	}
	count(3, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{PolicyName: "p", FunctionName: "security_file_permission"}}})
	count(1, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{PolicyName: "q", FunctionName: "security_file_permission"}}})
	count(2, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessTracepoint{ProcessTracepoint: &api.ProcessTracepoint{PolicyName: "p", Subsys: "syscalls", Event: "sys_enter_openat"}}})
	count(4, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessUprobe{ProcessUprobe: &api.ProcessUprobe{PolicyName: "p", Path: "/bin/a b", Symbol: "c"}}})
	count(5, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessUprobe{ProcessUprobe: &api.ProcessUprobe{PolicyName: "p", Path: "/bin/a", Symbol: "b c"}}})
	count(6, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessUsdt{ProcessUsdt: &api.ProcessUsdt{PolicyName: "p", Path: "/bin/x", Provider: "prov", Name: "probe"}}})
	count(7, &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessLsm{ProcessLsm: &api.ProcessLsm{PolicyName: "p", FunctionName: "file_open"}}})

	got := map[[2]string]uint64{}
	c.byHook(func(policy, hook string, n uint64) {
		k := [2]string{policy, hook}
		if _, dup := got[k]; dup {
			t.Errorf("two series of policy %q hook %q", policy, hook)
		}
		got[k] = n
	})
	want := map[[2]string]uint64{
		{"p", "kprobe:security_file_permission"}:      3,
		{"q", "kprobe:security_file_permission"}:      1,
		{"p", "tracepoint:syscalls/sys_enter_openat"}: 2,
		{"p", "uprobe:/bin/a b c"}:                    9,
		{"p", "usdt:/bin/x prov:probe"}:               6,
		{"p", "lsm:file_open"}:                        7,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("byHook:\n%v\nwant\n%v", got, want)
	}
	if n := c.byType()["PROCESS_KPROBE"]; n != 4 {
		t.Errorf("PROCESS_KPROBE %d, want 4", n)
	}
}

// Count is on the event path: no allocation once a hook has been seen.
func TestCountAllocs(t *testing.T) {
	var c EventCounter
	ev := &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{PolicyName: "p", FunctionName: "security_file_permission"}}}
	c.Count(ev)
	if n := testing.AllocsPerRun(100, func() { c.Count(ev) }); n != 0 {
		t.Errorf("Count allocates %v times an event, want 0", n)
	}
}
