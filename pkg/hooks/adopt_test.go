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
	base, err := sensor.LoadBase(sensor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	rd, err := ringbuf.NewReader(base.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	load := func(run uint16, pins, adopt string) *Manager {
		t.Helper()
		m := NewManager(zerolog.Nop(), base.Events(), sensor.Options{ExecCreds: base.ExecCreds(), RunTag: run, Features: features})
		m.PinUnder(pins)
		if adopt != "" {
			m.AdoptFrom(adopt)
		}
		if err := m.LoadPolicy(policies[0]); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// opened opens watched and returns the runs of the records of it, one
	// per hook
	opened := func() []uint16 {
		t.Helper()
		drainRuns(t, rd)
		fd, err := syscall.Open(watched, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.Close(fd)
		return drainRuns(t, rd)
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
