package hooks

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// usdtSites is a usdts: hook loaded at every site of its probe: one hook
// (one id, one policy entry) of several uprobe objects (the compiler's
// Progs; only USDT probes compile to more than one).
type usdtSites []*sensor.ProgHook

// Stats adds up the sites' counters.
func (s usdtSites) Stats() (sensor.GenericStats, error) {
	var sum sensor.GenericStats
	var errs []error
	for _, k := range s {
		st, err := k.Stats()
		errs = append(errs, err)
		sum.Calls += st.Calls
		sum.Matched += st.Matched
		sum.Posted += st.Posted
		sum.Drops += st.Drops
		sum.Signals += st.Signals
		sum.Cached += st.Cached
		sum.MemoryBytes += st.MemoryBytes
	}
	return sum, errors.Join(errs...)
}

// Pin pins site i under dir/site<i>.
func (s usdtSites) Pin(dir string) error {
	for i, k := range s {
		if err := k.Pin(filepath.Join(dir, fmt.Sprintf("site%d", i))); err != nil {
			return err
		}
	}
	return nil
}

// ListedSince is when the last of the sites began to run: from then on,
// every site runs.
func (s usdtSites) ListedSince() uint64 {
	var since uint64
	for _, h := range s {
		t := h.ListedSince()
		if t == 0 {
			return 0
		}
		since = max(since, t)
	}
	return since
}

func (s usdtSites) Close() error {
	var errs []error
	for _, k := range s {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}

// SetCgroups limits every site to the cgroups ids (a scoped policy).
func (s usdtSites) SetCgroups(ids []uint64) error {
	for _, k := range s {
		if err := k.SetCgroups(ids); err != nil {
			return err
		}
	}
	return nil
}
