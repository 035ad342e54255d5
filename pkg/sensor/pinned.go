package sensor

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// PinnedBase is a previous run's base sensor, found pinned in bpffs: its
// ring buffer holds what happened while no agent was reading.
type PinnedBase struct {
	Events *ebpf.Map
	stats  *ebpf.Map
}

// OpenPinnedBase opens the maps Base.Pin left in dir.
func OpenPinnedBase(dir string) (*PinnedBase, error) {
	events, err := ebpf.LoadPinnedMap(filepath.Join(dir, "events"), nil)
	if err != nil {
		return nil, fmt.Errorf("opening the pinned ring buffer: %w", err)
	}
	stats, err := ebpf.LoadPinnedMap(filepath.Join(dir, "stats"), nil)
	if err != nil {
		events.Close()
		return nil, fmt.Errorf("opening the pinned counters: %w", err)
	}
	return &PinnedBase{Events: events, stats: stats}, nil
}

// Stats reads the previous run's kernel-side counters; RingbufDrops
// counts what the full ring buffer lost while nobody read it.
func (p *PinnedBase) Stats() (Stats, error) { return readStats(p.stats) }

// Close releases the maps.
func (p *PinnedBase) Close() error {
	return errors.Join(p.Events.Close(), p.stats.Close())
}
