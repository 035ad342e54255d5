package tracingpolicy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// ActionNotifyEnforcer makes the calls of spec.enforcers act on the
// notified thread: fail with ArgError and/or receive signal ArgSig.
// NotifyKiller, its earlier name (with spec.killers), is read as it.
//
// This agent acts at the notifying hook itself, so the hook must be one of
// the enforcer's calls (pkg/hooks checks it): a kprobe on one of them, or
// a system-call tracepoint that matches only them.
const ActionNotifyEnforcer Action = "NotifyEnforcer"

// EnforcerSpec is spec.enforcers' (or spec.killers') one entry: the
// functions (system calls, or list:NAME of spec.lists) NotifyEnforcer acts
// on.
type EnforcerSpec struct {
	// Calls as written; Lists names the lists among them (list:NAME).
	Calls []string
	Src   Source
}

// maxEnforcerCalls bounds an enforcer's call list.
const maxEnforcerCalls = 256

// enforcers decodes spec.enforcers (field "calls") or, with killers,
// spec.killers (field "syscalls"). Tetragon allows one entry.
func (d *decoder) enforcers(n *yaml.Node, p fieldPath, s *Spec, killers bool) {
	key := "calls"
	if killers {
		key = "syscalls"
	}
	if s.Enforcer != nil {
		d.errorf(n, p, "spec.enforcers and spec.killers (its earlier name) are both set: give one")
		return
	}
	d.list(n, p, 1, func(_ int, item *yaml.Node, ip fieldPath) {
		e := &EnforcerSpec{Src: d.src(item, ip)}
		d.mapping(item, ip, []field{{name: key, required: true, decode: func(v *yaml.Node, fp fieldPath) {
			var nodes []*yaml.Node
			e.Calls, nodes = d.strings(v, fp, maxEnforcerCalls)
			for i, c := range e.Calls {
				if name, ok := strings.CutPrefix(c, "list:"); ok {
					d.enforcerLists = append(d.enforcerLists, inMapListRef{name: name, at: d.src(nodes[i], fp.index(i))})
				} else if msg := checkTracepointName(c); msg != "" {
					d.errorf(nodes[i], fp.index(i), "invalid function name %q: %s", truncate(c), msg)
				}
			}
			if len(e.Calls) == 0 {
				d.errorf(v, fp, "%s must not be empty", key)
			}
		}}})
		s.Enforcer = e
	})
}

// checkEnforcers runs once the spec is read: the lists an enforcer names
// must exist, and NotifyEnforcer needs an enforcer.
func (d *decoder) checkEnforcers(s *Spec) {
	for _, r := range d.enforcerLists {
		if _, ok := s.List(r.name); !ok {
			d.add(r.at.Errorf("list %q is not defined in spec.lists", truncate(r.name)))
		}
	}
	if s.Enforcer != nil {
		return
	}
	for _, at := range d.notifyActions {
		d.add(at.Errorf("action NotifyEnforcer (NotifyKiller) needs spec.enforcers (spec.killers): the calls it acts on"))
	}
}

// EnforcerCalls are the enforcer's calls with its lists expanded; nil
// without an enforcer.
func (s *Spec) EnforcerCalls() []string {
	if s.Enforcer == nil {
		return nil
	}
	var out []string
	for _, c := range s.Enforcer.Calls {
		if name, ok := strings.CutPrefix(c, "list:"); ok {
			l, _ := s.List(name)
			out = append(out, l.Values...)
			continue
		}
		out = append(out, c)
	}
	return out
}

// notifyArgs checks a NotifyEnforcer action: argError, argSig or both,
// argError only where the hook can make the call fail.
func (d *decoder) notifyArgs(a *ActionSelector, n, actionNode, argErrorNode, argSigNode *yaml.Node, p fieldPath, h *hookCtx) {
	if a.Action != ActionNotifyEnforcer {
		return
	}
	d.notifyActions = append(d.notifyActions, a.Src)
	if argErrorNode == nil && argSigNode == nil {
		d.errorf(n, p, "action NotifyEnforcer needs argError (the error the call returns), argSig (the signal sent), or both")
	}
	if h.kind != hookKprobe && h.kind != hookTracepoint {
		d.errorf(actionNode, p.field("action"), "action NotifyEnforcer is served on kprobes and system-call tracepoints only")
		return
	}
	if argErrorNode == nil {
		return
	}
	switch h.kind {
	case hookTracepoint:
		// the enforcer program on the system calls is what fails them
		d.errorf(argErrorNode, p.field("argError"), "argError from a tracepoint makes the enforcer's system calls fail through an enforcer program on each of them, which needs bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE) or fmod_ret on system calls (CONFIG_FUNCTION_ERROR_INJECTION): not built, as the kernels this agent is tested on (its host, Debian 6.1 and 6.12) enable neither and Tetragon's enforcer fails there too; argSig alone is served")
	case hookKprobe:
		if !h.override {
			d.errorf(actionNode, p.field("action"), "argError: %s", h.overrideWhy)
		}
	}
}
