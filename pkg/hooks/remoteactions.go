package hooks

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// RemoteActions carries out the actions a policy asks of the agent rather
// than of the kernel, GetUrl and DnsLookup. Both calls must return at once
// (queue or drop): they run on the event pipeline.
type RemoteActions interface {
	GetURL(policy, url string)
	LookupDNS(policy, fqdn string)
}

// SetRemoteActions gives the manager what performs GetUrl and DnsLookup.
// Without it, policies that use them are refused: a policy that loads does
// what it says.
func (m *Manager) SetRemoteActions(r RemoteActions) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remote = r
}

// checkRemote refuses hooks with GetUrl or DnsLookup when nothing can
// perform them.
func (m *Manager) checkRemote(hooks []HookDecl) error {
	m.mu.RLock()
	r := m.remote
	m.mu.RUnlock()
	if r != nil {
		return nil
	}
	for _, d := range hooks {
		for si, s := range d.Selectors {
			for _, a := range s.Actions {
				if a.Action == "GetUrl" || a.Action == "DnsLookup" {
					return fmt.Errorf("%s: selectors[%d]: action %s is performed by the agent's network actions, which this manager was not given", d.Call, si, a.Action)
				}
			}
		}
	}
	return nil
}

// remoteAct performs the GetUrl and DnsLookup actions of the selector
// that matched for record g. It reports whether the selector also says
// NoPost: the kernel sent the record only for these actions, and it makes
// no event.
func (m *Manager) remoteAct(info *hookInfo, g *observer.Generic) (noPost bool) {
	acts := selectorActions(info, g)
	remote := false
	for _, a := range acts {
		switch a.Action {
		case "GetUrl", "DnsLookup":
			remote = true
		case "NoPost":
			noPost = true
		}
	}
	if !remote {
		return false
	}
	m.mu.RLock()
	r := m.remote
	m.mu.RUnlock()
	if r == nil {
		// checkRemote refused the policy; nothing to do
		return noPost
	}
	for _, a := range acts {
		switch a.Action {
		case "GetUrl":
			r.GetURL(info.decl.Policy, a.URL)
		case "DnsLookup":
			r.LookupDNS(info.decl.Policy, a.FQDN)
		}
	}
	return noPost
}

// remoteEventAction is the event's action for a selector whose only
// actions besides Post are remote ones, as Tetragon reports them
// (KPROBE_ACTION_GETURL, KPROBE_ACTION_DNSLOOKUP); 0 otherwise.
func remoteEventAction(info *hookInfo, g *observer.Generic) api.KprobeAction {
	var act api.KprobeAction
	for _, a := range selectorActions(info, g) {
		switch a.Action {
		case "GetUrl":
			act = api.KprobeAction_KPROBE_ACTION_GETURL
		case "DnsLookup":
			act = api.KprobeAction_KPROBE_ACTION_DNSLOOKUP
		}
	}
	return act
}

// selectorActions are the actions of the selector record g matched: the
// kernel numbers selectors as the hook declares them.
func selectorActions(info *hookInfo, g *observer.Generic) []ActionDecl {
	if int(g.Selector) >= len(info.decl.Selectors) {
		return nil // no selector: the hook posts every call
	}
	return info.decl.Selectors[g.Selector].Actions
}
