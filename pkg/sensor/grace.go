package sensor

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// grace waits for the BPF programs running at a moment to finish: every
// update of a map-in-map returns only after synchronize_rcu, so a hook's
// entries deleted after wait returns cannot be read by a call that saw the
// hook listed.
type grace struct {
	outer, inner *ebpf.Map
}

func newGrace() (*grace, error) {
	spec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	inner, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("creating a grace map: %w", err)
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: spec})
	if err != nil {
		inner.Close()
		return nil, fmt.Errorf("creating a grace map: %w", err)
	}
	return &grace{outer: outer, inner: inner}, nil
}

// wait returns once every program run in flight when it was called has
// finished.
func (g *grace) wait() error {
	if err := g.outer.Put(uint32(0), g.inner); err != nil {
		return fmt.Errorf("waiting for running calls: %w", err)
	}
	return nil
}

func (g *grace) Close() error {
	if g == nil {
		return nil
	}
	return errors.Join(g.outer.Close(), g.inner.Close())
}
