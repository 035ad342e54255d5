package sensor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// cgroupScope keeps the cgroups a scoped hook applies to (HookSpec.Scoped,
// ProgHookSpec.Scoped) in its object's hook_cgroups map: a call from any
// other cgroup matches none of the hook's selectors (bpf/lib/hook.h,
// in_scope).
type cgroupScope struct {
	mu   sync.Mutex
	m    *ebpf.Map
	slot uint32
	set  map[uint64]bool
}

func newCgroupScope(m *ebpf.Map, slot uint32) *cgroupScope {
	return &cgroupScope{m: m, slot: slot, set: map[uint64]bool{}}
}

// replace makes ids the hook's cgroups: new ones are added before the ones
// no longer listed are removed. On error the entries written so far stay
// and are remembered, so a later call (or clear) sets them right.
func (s *cgroupScope) replace(ids []uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for id := range want {
		if s.set[id] {
			continue
		}
		if err := s.m.Put(bpf.HookCgroupKey{Slot: s.slot, Cgroup: id}, uint8(1)); err != nil {
			return fmt.Errorf("adding cgroup %d to the scope of hook slot %d: %w", id, s.slot, err)
		}
		s.set[id] = true
	}
	var errs []error
	for id := range s.set {
		if want[id] {
			continue
		}
		if err := s.m.Delete(bpf.HookCgroupKey{Slot: s.slot, Cgroup: id}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("removing cgroup %d from the scope of hook slot %d: %w", id, s.slot, err))
			continue
		}
		delete(s.set, id)
	}
	return errors.Join(errs...)
}

// SetCgroups makes ids (cgroup v2 ids, as bpf_get_current_cgroup_id
// returns them) the cgroups the hook applies to. It is an error for a hook
// that is not scoped.
func (h *DataHook) SetCgroups(ids []uint64) error {
	if h.scope == nil {
		return errors.New("the hook is not scoped to cgroups")
	}
	return h.scope.replace(ids)
}

// SetCgroups is DataHook.SetCgroups for a hook of its own object.
func (k *ProgHook) SetCgroups(ids []uint64) error {
	if k.scope == nil {
		return errors.New("the hook is not scoped to cgroups")
	}
	return k.scope.replace(ids)
}
