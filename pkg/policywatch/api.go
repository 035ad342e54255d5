package policywatch

import (
	"slices"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/hooks"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// ListAPI is List in the API's terms: Tetragon's TracingPolicyStatus
// fields, then this agent's own (source, hooks, enforces).
func (r *Registry) ListAPI() *api.ListTracingPoliciesResponse {
	loads, errs := r.Counters()
	res := &api.ListTracingPoliciesResponse{Loads: loads, LoadErrors: errs}
	for _, e := range r.List() {
		st := &api.TracingPolicyStatus{
			Id: e.ID, Name: e.Name, Info: e.Source, Source: e.Source, Error: e.Error,
			Mode: api.TracingPolicyMode_TP_MODE_ENFORCE,
		}
		switch e.State {
		case Enabled:
			st.State = api.TracingPolicyState_TP_STATE_ENABLED
			st.Enabled = true
		case Disabled:
			st.State = api.TracingPolicyState_TP_STATE_DISABLED
		case LoadError:
			st.State = api.TracingPolicyState_TP_STATE_LOAD_ERROR
		}
		if e.Policy != nil {
			if e.Policy.Spec.Mode == tp.ModeMonitor {
				st.Mode = api.TracingPolicyMode_TP_MODE_MONITOR
			}
			st.Enforces = e.Policy.Enforces() && e.Policy.Spec.Mode != tp.ModeMonitor
		}
		for _, h := range e.Hooks {
			st.Hooks = append(st.Hooks, &api.TracingPolicyHook{
				Call: h.Call, Mechanism: h.Mechanism,
				Calls: h.Stats.Calls, Matched: h.Stats.Matched, Posted: h.Stats.Posted,
				Signals: h.Stats.Signals, Drops: h.Stats.Drops, MemoryBytes: h.Stats.MemoryBytes,
			})
			st.KernelMemoryBytes += h.Stats.MemoryBytes
			// Tetragon names its sensors for the hook kind they serve;
			// its loader sensor (spec.loader) is "__loader__"
			s := "generic_" + h.Kind
			if h.Kind == hooks.HookKindLoader {
				s = "__loader__"
			}
			if !slices.Contains(st.Sensors, s) {
				st.Sensors = append(st.Sensors, s)
			}
		}
		res.Policies = append(res.Policies, st)
	}
	return res
}
