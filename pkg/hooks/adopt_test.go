package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// adoptStacksPolicy adds a kprobe hook with stacks on fd_install to the
// test's tracepoint policy: an object of its own.
const adoptStacksPolicy = `  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - %[1]q
      matchActions:
      - action: Post
        kernelStackTrace: true
`

// TestRestartAdoptsObjects: a manager that adopts (AdoptFrom) what a
// previous one pinned and kept runs the previous run's programs: of an
// object hooks share, and, where the kernel has kprobes, of one a hook
// with stacks has of its own. The previous
// run's hooks record until the policy is loaded again, and each call is
// recorded by one run's hooks only; once the old pins are gone, this
// run's hooks go on.
func TestRestartAdoptsObjects(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	dir, err := os.MkdirTemp(kernelfs.BPF().Path, "adopt-objects-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sensor.RemovePinned(dir) })
	watched := filepath.Join(t.TempDir(), "watched")
	if err := os.WriteFile(watched, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	features := testutil.Kernel(t).Map()
	// a hook of the syscalls/sys_enter_openat tracepoint, in an object
	// the hooks of its layout share
	policy, objects := testutil.OpenatTracepointPolicy("adopted", watched, ""), 1
	if features["kprobe"] {
		policy, objects = fmt.Appendf(policy, adoptStacksPolicy, watched), 2
	} else {
		t.Log("the kernel lacks kprobes: no object of a hook's own (stacks need kprobes)")
	}
	policies, err := tp.Parse("adopted.yaml", policy)
	if err != nil {
		t.Fatal(err)
	}
	r := newRuns(t, features)
	load := func(run uint16, pins, adopt string) *Manager {
		t.Helper()
		return r.manager(run, pins, adopt, policies[0])
	}
	// the runs of the records of watched, one per hook
	opened := func() []uint16 {
		t.Helper()
		return r.opened(watched)
	}
	expect := func(what string, got []uint16, run uint16) {
		t.Helper()
		if want := slices.Repeat([]uint16{run}, objects); !slices.Equal(got, want) {
			t.Errorf("%s: records of runs %v, want one of each hook, of run %d", what, got, run)
		}
	}

	run1, run2 := filepath.Join(dir, "run1"), filepath.Join(dir, "run2")
	first := load(1, run1, "")
	progs := pinnedPointProgs(t, run1)
	if len(progs) != objects {
		t.Fatalf("%d objects' programs pinned, want %d", len(progs), objects)
	}
	expect("the first run", opened(), 1)
	if err := first.Keep(); err != nil {
		t.Fatal(err)
	}
	expect("nobody running", opened(), 1)

	second := load(2, run2, run1)
	defer second.Close()
	if got := pinnedPointProgs(t, run2); !slices.Equal(got, progs) {
		t.Fatalf("programs %v after the restart, want the adopted %v", got, progs)
	}
	expect("the next run, the old pins still there", opened(), 2)
	if err := second.ReleaseAdopted(); err != nil {
		t.Fatal(err)
	}
	if err := sensor.RemovePinned(run1); err != nil {
		t.Fatal(err)
	}
	expect("the next run, the old pins gone", opened(), 2)
	if got := pinnedPointProgs(t, run2); !slices.Equal(got, progs) {
		t.Errorf("programs %v after the old pins went, want the adopted %v", got, progs)
	}
}

// runs is a base sensor that the hook managers of successive agent runs
// share, as a restart that adopts it would, and a reader of its ring
// buffer.
type runs struct {
	t        *testing.T
	base     *sensor.Base
	rd       *ringbuf.Reader
	features map[string]bool
}

// newRuns loads the base sensor; both go when the test ends.
func newRuns(t *testing.T, features map[string]bool) *runs {
	t.Helper()
	base, err := sensor.LoadBase(sensor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	rd, err := ringbuf.NewReader(base.Events())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return &runs{t: t, base: base, rd: rd, features: features}
}

// manager is run's hook manager, pinning under pins and adopting what
// adopt holds (none when empty), with pols loaded.
func (r *runs) manager(run uint16, pins, adopt string, pols ...*tp.TracingPolicy) *Manager {
	r.t.Helper()
	m := NewManager(zerolog.Nop(), r.base.Events(), sensor.Options{ExecCreds: r.base.ExecCreds(), RunTag: run, Features: r.features})
	m.PinUnder(pins)
	if adopt != "" {
		m.AdoptFrom(adopt)
	}
	for _, p := range pols {
		if err := m.LoadPolicy(p); err != nil {
			r.t.Fatal(err)
		}
	}
	return m
}

// opened opens path and returns the runs of the hook records of it,
// sorted.
func (r *runs) opened(path string) []uint16 {
	r.t.Helper()
	drainRuns(r.t, r.rd)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	syscall.Close(fd)
	return drainRuns(r.t, r.rd)
}

// pinnedPointProgs are the programs of the attach points' objects pinned
// under a manager's pin root, sorted.
func pinnedPointProgs(t *testing.T, pins string) []ebpf.ProgramID {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(pins, PointsPin, "*", "link*"))
	var ids []ebpf.ProgramID
	for _, path := range paths {
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.Program)
	}
	slices.Sort(ids)
	return ids
}

// drainRuns returns the runs of the hook records rd holds now, sorted,
// waiting 200 ms for each.
func drainRuns(t *testing.T, rd *ringbuf.Reader) []uint16 {
	t.Helper()
	var runs []uint16
	for _, raw := range testutil.DrainRing(t, rd, 200*time.Millisecond) {
		var dec observer.Decoder
		v, err := dec.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := v.(*observer.HookRecord); ok {
			runs = append(runs, g.Run)
		}
	}
	slices.Sort(runs)
	return runs
}

// TestRestartKeepsCollidedHook: two policies whose hooks' ids collided
// (the second loaded moved on to the next id) are loaded in the other
// order after a restart, so each gets the id the other's adopted hook
// has. Each new hook replaces its own policy's old one all the same (by
// key), and the other policy's old hook goes on enforcing until its new
// version is loaded.
func TestRestartKeepsCollidedHook(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	dir, err := os.MkdirTemp(kernelfs.BPF().Path, "adopt-collided-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sensor.RemovePinned(dir) })
	tmp := t.TempDir()
	fileA, fileB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	for _, f := range []string{fileA, fileB} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	features := testutil.Kernel(t).Map()
	parsed := func(path string) *tp.TracingPolicy {
		t.Helper()
		ps, err := tp.Parse("policy.yaml", testutil.OpenatTracepointPolicy("p", path, ""))
		if err != nil {
			t.Fatal(err)
		}
		return ps[0]
	}
	polA, polB := parsed(fileA), parsed(fileB)
	// names under which the two policies' hooks get the same id, found by
	// a birthday search over names (about 2^16 of each)
	probe := NewManager(zerolog.Nop(), nil, sensor.Options{Features: features})
	idOf := func(p *tp.TracingPolicy, name string) uint32 {
		t.Helper()
		p.Metadata.Name = name
		decls, err := compiler.FromPolicy(p, false)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := probe.hookIDs(name, decls)
		return ids[0]
	}
	idsA, idsB := map[uint32]string{}, map[uint32]string{}
	var nameA, nameB string
	for i := 0; nameA == "" && i < 1<<20; i++ {
		a, b := fmt.Sprintf("a-%d", i), fmt.Sprintf("b-%d", i)
		ia, ib := idOf(polA, a), idOf(polB, b)
		idsA[ia], idsB[ib] = a, b
		if n, ok := idsB[ia]; ok {
			nameA, nameB = a, n
		} else if n, ok := idsA[ib]; ok {
			nameA, nameB = n, b
		}
	}
	if nameA == "" {
		t.Fatal("no two names whose hooks' ids collide")
	}
	polA.Metadata.Name, polB.Metadata.Name = nameA, nameB

	r := newRuns(t, features)
	expect := func(what, path string, runs ...uint16) {
		t.Helper()
		if got := r.opened(path); !slices.Equal(got, runs) {
			t.Errorf("%s: %s recorded by hooks of runs %v, want %v", what, filepath.Base(path), got, runs)
		}
	}

	run1, run2 := filepath.Join(dir, "run1"), filepath.Join(dir, "run2")
	first := r.manager(1, run1, "", polA, polB)
	expect("the first run", fileA, 1)
	expect("the first run", fileB, 1)
	if err := first.Keep(); err != nil {
		t.Fatal(err)
	}
	// the other order: B's hook gets the id A's adopted hook has
	second := r.manager(2, run2, run1, polB)
	defer second.Close()
	expect("B loaded again with A's old id", fileA, 1)
	expect("B loaded again with A's old id", fileB, 2)
	if err := second.LoadPolicy(polA); err != nil {
		t.Fatal(err)
	}
	expect("A loaded again with B's old id", fileA, 2)
	expect("A loaded again with B's old id", fileB, 2)
	if err := second.ReleaseAdopted(); err != nil {
		t.Fatal(err)
	}
	expect("after the release", fileA, 2)
	expect("after the release", fileB, 2)
}
