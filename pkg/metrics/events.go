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
	// hooks maps hookKey to *atomic.Uint64; the set of keys only grows,
	// bounded by the policies loaded over the agent's life
	hooks sync.Map
}

type hookKey struct{ policy, hook string }

// Count counts one published event.
func (c *EventCounter) Count(ev *api.GetEventsResponse) {
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		c.exec.Add(1)
	case *api.GetEventsResponse_ProcessExit:
		c.exit.Add(1)
	case *api.GetEventsResponse_ProcessKprobe:
		c.kprobe.Add(1)
		c.hook(e.ProcessKprobe.GetPolicyName(), HookLabel("kprobe", e.ProcessKprobe.GetFunctionName()))
	case *api.GetEventsResponse_ProcessTracepoint:
		t := e.ProcessTracepoint
		c.tracepoint.Add(1)
		c.hook(t.GetPolicyName(), HookLabel("tracepoint", t.GetSubsys()+"/"+t.GetEvent()))
	case *api.GetEventsResponse_ProcessUprobe:
		u := e.ProcessUprobe
		c.uprobe.Add(1)
		c.hook(u.GetPolicyName(), HookLabel("uprobe", u.GetPath()+" "+u.GetSymbol()))
	case *api.GetEventsResponse_ProcessUsdt:
		u := e.ProcessUsdt
		c.usdt.Add(1)
		c.hook(u.GetPolicyName(), HookLabel("usdt", u.GetPath()+" "+u.GetProvider()+":"+u.GetName()))
	case *api.GetEventsResponse_ProcessLoader:
		c.loader.Add(1)
	case *api.GetEventsResponse_ProcessLsm:
		c.lsm.Add(1)
		c.hook(e.ProcessLsm.GetPolicyName(), HookLabel("lsm", e.ProcessLsm.GetFunctionName()))
	}
}

func (c *EventCounter) hook(policy, label string) {
	k := hookKey{policy, label}
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
	c.hooks.Range(func(k, v any) bool {
		hk := k.(hookKey)
		f(hk.policy, hk.hook, v.(*atomic.Uint64).Load())
		return true
	})
}
