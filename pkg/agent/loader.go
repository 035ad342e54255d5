package agent

import (
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/process"
)

// loaderEvent builds a loader record's process_loader event with the
// mapping process, as policyEvent does for hook records; nil for a file
// the process already reported.
func (a *Agent) loaderEvent(r *observer.Loader) *eventbus.Event {
	proc, parent, wire, ok := a.cache.Lookup(r.Pid)
	if !ok {
		proc, wire = &api.Process{Pid: wrapperspb.UInt32(r.Pid), Tid: wrapperspb.UInt32(r.Tid), Flags: "miss"}, process.Wire{}
	}
	ev := a.loaders.Event(r, proc, parent)
	if ev == nil {
		return nil
	}
	ev.NodeName, ev.Time = a.node, a.cache.Timestamp(r.Ktime)
	return eventbus.NewEvent(ev, wire.Process, wire.Parent)
}
