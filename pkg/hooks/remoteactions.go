package hooks

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// EnableRemoteActions says that the agent performs GetUrl and DnsLookup
// (its event builder has a runner, hookevent.RemoteActions). Without it,
// policies that use them are refused: a policy that loads does what it
// says.
func (m *Manager) EnableRemoteActions() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remote = true
}

// checkRemote refuses hooks with GetUrl or DnsLookup when nothing can
// perform them.
func (m *Manager) checkRemote(hooks []compiler.Decl) error {
	m.mu.RLock()
	ok := m.remote
	m.mu.RUnlock()
	if ok {
		return nil
	}
	for _, d := range hooks {
		for si, s := range d.Selectors {
			for _, a := range s.MatchActions {
				if a.Action == tracingpolicy.ActionGetURL || a.Action == tracingpolicy.ActionDNSLookup {
					return fmt.Errorf("%s: selectors[%d]: action %s is performed by the agent's network actions, which this manager was not given", d.Call, si, a.Action)
				}
			}
		}
	}
	return nil
}
