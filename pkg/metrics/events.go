package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// EventCounter counts published events by type, and policy events by
// policy and hook. Count is on the event path, so it costs an atomic add or
// two and a lock-free map lookup, not a label-vector lookup per event.
// It is safe for concurrent use.
type EventCounter struct {
	exec, exit, kprobe, tracepoint, uprobe, lsm, usdt, loader atomic.Uint64
	// hooks maps eventHook to *atomic.Uint64; the set of keys only grows,
	// bounded by the policies loaded over the agent's life
	hooks sync.Map
}

type hookKey struct{ policy, hook string }

// eventHook is an event's policy and hook by the event's own strings: its
// label is put together when the metrics are read, not for every event
// (joining it was an allocation per event, half of Count's time at
// 100,000 events/s).
type eventHook struct{ policy, kind, a, b, c string }

// label is the hook's label (HookLabel).
func (h eventHook) label() string {
	switch h.kind {
	case "tracepoint":
		return HookLabel(h.kind, h.a+"/"+h.b)
	case "uprobe":
		return HookLabel(h.kind, h.a+" "+h.b)
	case "usdt":
		return HookLabel(h.kind, h.a+" "+h.b+":"+h.c)
	}
	return HookLabel(h.kind, h.a)
}

// Count counts one published event.
func (c *EventCounter) Count(ev *api.GetEventsResponse) {
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		c.exec.Add(1)
	case *api.GetEventsResponse_ProcessExit:
		c.exit.Add(1)
	case *api.GetEventsResponse_ProcessKprobe:
		c.kprobe.Add(1)
		c.hook(eventHook{policy: e.ProcessKprobe.GetPolicyName(), kind: "kprobe", a: e.ProcessKprobe.GetFunctionName()})
	case *api.GetEventsResponse_ProcessTracepoint:
		t := e.ProcessTracepoint
		c.tracepoint.Add(1)
		c.hook(eventHook{policy: t.GetPolicyName(), kind: "tracepoint", a: t.GetSubsys(), b: t.GetEvent()})
	case *api.GetEventsResponse_ProcessUprobe:
		u := e.ProcessUprobe
		c.uprobe.Add(1)
		c.hook(eventHook{policy: u.GetPolicyName(), kind: "uprobe", a: u.GetPath(), b: u.GetSymbol()})
	case *api.GetEventsResponse_ProcessUsdt:
		u := e.ProcessUsdt
		c.usdt.Add(1)
		c.hook(eventHook{policy: u.GetPolicyName(), kind: "usdt", a: u.GetPath(), b: u.GetProvider(), c: u.GetName()})
	case *api.GetEventsResponse_ProcessLoader:
		c.loader.Add(1)
	case *api.GetEventsResponse_ProcessLsm:
		c.lsm.Add(1)
		c.hook(eventHook{policy: e.ProcessLsm.GetPolicyName(), kind: "lsm", a: e.ProcessLsm.GetFunctionName()})
	}
}

func (c *EventCounter) hook(k eventHook) {
	v, ok := c.hooks.Load(k)
	if !ok {
		v, _ = c.hooks.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// HookLabel is a hook's label, as Tetragon writes it: "kprobe:<function>"
// (whichever mechanism serves it), "tracepoint:<group>/<event>",
// "uprobe:<path> <symbol>", "usdt:<path> <provider>:<name>", "lsm:<hook>".
func HookLabel(kind, name string) string { return kind + ":" + name }

// byType returns the counts by Tetragon's event type name.
func (c *EventCounter) byType() map[string]uint64 {
	return map[string]uint64{
		api.EventType_PROCESS_EXEC.String():       c.exec.Load(),
		api.EventType_PROCESS_EXIT.String():       c.exit.Load(),
		api.EventType_PROCESS_KPROBE.String():     c.kprobe.Load(),
		api.EventType_PROCESS_TRACEPOINT.String(): c.tracepoint.Load(),
		api.EventType_PROCESS_UPROBE.String():     c.uprobe.Load(),
		api.EventType_PROCESS_LSM.String():        c.lsm.Load(),
		api.EventType_PROCESS_USDT.String():       c.usdt.Load(),
		api.EventType_PROCESS_LOADER.String():     c.loader.Load(),
	}
}

func (c *EventCounter) byHook(f func(policy, hook string, n uint64)) {
	// two hooks' strings may join into one label ("a b" "c" and "a" "b c"
	// as a uprobe's path and symbol): one series, their sum
	sums := map[hookKey]uint64{}
	c.hooks.Range(func(k, v any) bool {
		h := k.(eventHook)
		sums[hookKey{h.policy, h.label()}] += v.(*atomic.Uint64).Load()
		return true
	})
	for k, n := range sums {
		f(k.policy, k.hook, n)
	}
}
