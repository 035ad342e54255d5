package hooks

import (
	"errors"
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
)

// Scopes resolves a Scope into the cgroups (cgroup v2 ids) of the
// containers it names on this node now; the Kubernetes mode is one.
type Scopes interface {
	Cgroups(s compiler.Scope) ([]uint64, error)
}

// scopedObject is a hook object that can be limited to cgroups.
type scopedObject interface {
	SetCgroups(ids []uint64) error
}

// SetScopes makes the manager serve scoped policies (TracingPolicyNamespaced,
// podSelector, containerSelector), with s resolving their scopes; without
// it they are refused. Call it before loading anything, and call
// RefreshScopes whenever what s answers may have changed.
func (m *Manager) SetScopes(s Scopes) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scopes = s
}

func (m *Manager) scopesSet() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.scopes != nil
}

// fillScopes gives the scoped hooks among hs the cgroups of their scopes
// as they are now. Fills are serialized, each resolving anew: the last one
// to run wrote what is current.
func (m *Manager) fillScopes(hs []*loadedHook) error {
	m.mu.RLock()
	s := m.scopes
	m.mu.RUnlock()
	m.scopeMu.Lock()
	defer m.scopeMu.Unlock()
	var errs []error
	for _, h := range hs {
		if h.info.decl.Scope == nil {
			continue
		}
		obj, ok := h.obj.(scopedObject)
		if !ok || s == nil {
			errs = append(errs, fmt.Errorf("%s: the hook cannot be limited to pods", h.info.decl.Name()))
			continue
		}
		ids, err := s.Cgroups(*h.info.decl.Scope)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: resolving the pods it applies to: %w", h.info.decl.Name(), err))
			continue
		}
		if err := obj.SetCgroups(ids); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.info.decl.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// RefreshScopes gives every loaded scoped hook the cgroups of its scope as
// they are now: call it when containers come or go, or pods change labels.
func (m *Manager) RefreshScopes() error {
	m.mu.RLock()
	var hs []*loadedHook
	for _, lp := range m.policies {
		hs = append(hs, lp.hooks...)
	}
	m.mu.RUnlock()
	return m.fillScopes(hs)
}
