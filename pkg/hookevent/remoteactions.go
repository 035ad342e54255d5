package hookevent

import (
	"slices"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// RemoteActions carries out the actions a policy asks of the agent rather
// than of the kernel, GetUrl and DnsLookup. Both calls must return at once
// (queue or drop): they run on the event pipeline.
type RemoteActions interface {
	GetURL(policy, url string)
	LookupDNS(policy, fqdn string)
}

// selectorActions are the actions of the selector record g matched: the
// kernel numbers selectors as the hook declares them.
func (h *Hook) selectorActions(g *observer.HookRecord) []tracingpolicy.ActionSelector {
	if int(g.Selector) >= len(h.Actions) {
		return nil // no selector: the hook posts every call
	}
	return h.Actions[g.Selector]
}

// remoteAct performs the GetUrl and DnsLookup actions of the selector
// that matched for record g. It reports whether the selector also says
// NoPost: the kernel sent the record only for these actions, and it makes
// no event.
func (b *Builder) remoteAct(h *Hook, g *observer.HookRecord) (noPost bool) {
	acts := h.selectorActions(g)
	remote := false
	for _, a := range acts {
		switch {
		case a.Action.Remote():
			remote = true
		case a.Action == tracingpolicy.ActionNoPost:
			noPost = true
		}
	}
	if !remote {
		return false
	}
	if b.remote == nil {
		// the manager refused the policy; nothing to do
		return noPost
	}
	for _, a := range acts {
		switch a.Action {
		case tracingpolicy.ActionGetURL:
			b.remote.GetURL(h.Policy, a.ArgURL)
		case tracingpolicy.ActionDNSLookup:
			b.remote.LookupDNS(h.Policy, a.ArgFQDN)
		}
	}
	return noPost
}

// eventAction is the event's action for record g: what the kernel did
// (Sigkill, Signal, Override), NotifyEnforcer's, or for a selector whose
// only actions besides Post are remote ones, those, as Tetragon reports
// them (KPROBE_ACTION_GETURL, KPROBE_ACTION_DNSLOOKUP).
func (h *Hook) eventAction(g *observer.HookRecord, kernel api.KprobeAction) api.KprobeAction {
	acts := h.selectorActions(g)
	if slices.ContainsFunc(acts, func(a tracingpolicy.ActionSelector) bool { return a.Action == tracingpolicy.ActionNotifyEnforcer }) {
		return api.KprobeAction_KPROBE_ACTION_NOTIFYENFORCER
	}
	if kernel != api.KprobeAction_KPROBE_ACTION_POST {
		return kernel
	}
	act := kernel
	for _, a := range acts {
		switch a.Action {
		case tracingpolicy.ActionGetURL:
			act = api.KprobeAction_KPROBE_ACTION_GETURL
		case tracingpolicy.ActionDNSLookup:
			act = api.KprobeAction_KPROBE_ACTION_DNSLOOKUP
		}
	}
	return act
}
