package filters

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// MaxSelectorLen bounds one label selector, in bytes: selectors come from
// clients, and each is evaluated on every event.
const MaxSelectorLen = 1024

// compileLabels parses the labels filter: Kubernetes label selectors, as
// kubectl's -l takes them (app=web,tier!=db, env in (a,b), !canary); an
// event matches when any selector matches its pod's labels.
func compileLabels(src []string) ([]labels.Selector, error) {
	if len(src) == 0 {
		return nil, nil
	}
	out := make([]labels.Selector, 0, len(src))
	for i, s := range src {
		if len(s) > MaxSelectorLen {
			return nil, fmt.Errorf("labels %d: a selector of %d bytes, at most %d", i, len(s), MaxSelectorLen)
		}
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("labels %d %s: %w", i, quote(s), err)
		}
		out = append(out, sel)
	}
	return out, nil
}

// matchLabels: as in Tetragon, an event without a pod (a host process, or
// any process on a Docker host) never matches a labels filter.
func matchLabels(sels []labels.Selector, pod *api.Pod) bool {
	if pod == nil {
		return false
	}
	set := labels.Set(pod.GetPodLabels())
	for _, sel := range sels {
		if sel.Matches(set) {
			return true
		}
	}
	return false
}

// capCheck is one set of a CapFilter: which of the process's capability
// sets, and the one condition on it.
type capCheck struct {
	set  func(*api.Capabilities) []api.CapabilitiesType
	kind string // any, all, exactly, none
	caps set[api.CapabilitiesType]
}

// compileCaps compiles the capabilities filter. Each set given holds
// exactly one condition, as Tetragon requires; the sets are ANDed.
func compileCaps(f *api.CapFilter) ([]capCheck, error) {
	if f == nil {
		return nil, nil
	}
	var out []capCheck
	for _, s := range []struct {
		name string
		cf   *api.CapFilterSet
		set  func(*api.Capabilities) []api.CapabilitiesType
	}{
		{"permitted", f.GetPermitted(), (*api.Capabilities).GetPermitted},
		{"effective", f.GetEffective(), (*api.Capabilities).GetEffective},
		{"inheritable", f.GetInheritable(), (*api.Capabilities).GetInheritable},
	} {
		if s.cf == nil {
			continue
		}
		var conds []capCheck
		for _, c := range []struct {
			kind string
			caps []api.CapabilitiesType
		}{{"any", s.cf.GetAny()}, {"all", s.cf.GetAll()}, {"exactly", s.cf.GetExactly()}, {"none", s.cf.GetNone()}} {
			if len(c.caps) > 0 {
				conds = append(conds, capCheck{set: s.set, kind: c.kind, caps: newSet(c.caps)})
			}
		}
		if len(conds) != 1 {
			return nil, fmt.Errorf("capabilities %s: %d of any, all, exactly and none set, want one", s.name, len(conds))
		}
		out = append(out, conds[0])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("capabilities: no set (permitted, effective, inheritable) given")
	}
	return out, nil
}

// matchCaps reports whether the process's capabilities meet every check;
// an event without capabilities has empty sets.
func matchCaps(checks []capCheck, caps *api.Capabilities) bool {
	for _, c := range checks {
		have := newSet(c.set(caps))
		held := 0
		for cp := range c.caps {
			if have.has(cp) {
				held++
			}
		}
		var ok bool
		switch c.kind {
		case "any":
			ok = held > 0
		case "all":
			ok = held == len(c.caps)
		case "exactly":
			ok = held == len(c.caps) && len(have) == len(c.caps)
		case "none":
			ok = held == 0
		}
		if !ok {
			return false
		}
	}
	return true
}
