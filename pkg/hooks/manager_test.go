package hooks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// pinnedObject stands in for a loaded hook: its pin is a file, as a bpffs
// pin is, and closing it is counted. The kernel side of pins is covered by
// cmd/tetragon's e2e tests (TestKilledDuringReload, TestOutOfFileDescriptors).
type pinnedObject struct{ closed int }

func (o *pinnedObject) Stats() (sensor.GenericStats, error) { return sensor.GenericStats{}, nil }
func (o *pinnedObject) Pin(dir string) error                { return os.WriteFile(dir, nil, 0o600) }
func (o *pinnedObject) Close() error                        { o.closed++; return nil }
func (o *pinnedObject) ListedSince() uint64                 { return 0 }

// version publishes a pinned version of policy as build would.
func version(t *testing.T, m *Manager, policy, v string) (*loadedPolicy, *pinnedObject) {
	t.Helper()
	obj := &pinnedObject{}
	lp := &loadedPolicy{name: policy, dir: filepath.Join(m.pinRoot, policy, v), hooks: []*loadedHook{{id: 7, obj: obj, info: &hookInfo{}}}}
	if err := os.MkdirAll(lp.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := obj.Pin(filepath.Join(lp.dir, "hook0")); err != nil {
		t.Fatal(err)
	}
	return lp, obj
}

// TestUnpinFailureKeepsTrack: out of file descriptors, an unload that
// cannot remove the pins once dropped the policy while the pins kept it
// attached, so a later load made a second, untracked copy. The policy
// stays loaded and the unload can be retried; an old version a reload
// could not unpin is kept for Sweep.
func TestUnpinFailureKeepsTrack(t *testing.T) {
	m := NewManager(zeroLog(), nil, sensorOptions())
	m.PinUnder(t.TempDir())
	lp, obj := version(t, m, "p", "1")
	m.install(lp)

	var err error
	testutil.WithoutFreeFiles(t, func() { err = m.Unload("p") })
	if err == nil || len(m.Status()) != 1 || obj.closed != 0 {
		t.Fatalf("unload out of descriptors: %v; loaded %v, closed %d; want an error and p still loaded", err, m.Status(), obj.closed)
	}
	if _, serr := os.Stat(lp.dir); serr != nil {
		t.Fatalf("pins: %v", serr)
	}
	if err := m.Unload("p"); err != nil || len(m.Status()) != 0 || obj.closed != 1 {
		t.Fatalf("retried unload: %v; loaded %v, closed %d", err, m.Status(), obj.closed)
	}
	if _, err := os.Stat(filepath.Join(m.pinRoot, "p")); !os.IsNotExist(err) {
		t.Fatalf("pins left after unload: %v", err)
	}

	// a reload whose old version cannot be unpinned: swept later
	old, oldObj := version(t, m, "q", "1")
	m.install(old)
	m.mu.Lock()
	delete(m.policies, "q")
	m.mu.Unlock()
	testutil.WithoutFreeFiles(t, func() { m.discard(old) })
	if oldObj.closed != 1 || len(m.stale) != 1 {
		t.Fatalf("old version: closed %d, stale %v", oldObj.closed, m.stale)
	}
	if left := m.Sweep(); left != 0 {
		t.Fatalf("sweep left %d", left)
	}
	if _, err := os.Stat(old.dir); !os.IsNotExist(err) {
		t.Fatalf("old version's pins after sweep: %v", err)
	}
}

func zeroLog() zerolog.Logger { return zerolog.Nop() }

func sensorOptions() sensor.Options { return sensor.Options{} }
