package sensor

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestAdoptDispatcher: a dispatcher pinned by one run is adopted by the
// next with its programs and its hooks, which enforce until the next
// run's take over. A hook of the same key replaces the old one in one
// swap (the watched open is reported by exactly one run's hook), a hook
// of the same id and another key does not;
// a start that fails gives the old hooks back; a start that succeeds
// drops the old hooks nobody replaced, entries and all.
func TestAdoptDispatcher(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir, err := os.MkdirTemp(kernelfs.BPF().Path, "dispatch-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemovePinned(dir) })
	tmp := t.TempDir()
	kept, dropped := filepath.Join(tmp, "kept"), filepath.Join(tmp, "dropped", "file")
	writeX(t, kept, dropped)
	// kept is loaded again by every run; dropped only by the first, by a
	// prefix (the prefilter's union holds it), for the processes of one
	// cgroup (hook_cgroups holds it)
	cg := testCgroups(t, 1)[0]
	keptSpec := func() HookSpec {
		return HookSpec{ID: 7, Key: 7007, Syscalls: openFamily, Args: openArgs(), Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{kept}}}, Actions: ActPost,
		}}}
	}
	droppedSpec := HookSpec{ID: 8, Key: 8008, Syscalls: openFamily, Args: openArgs(), Scoped: true, Selectors: []Selector{{
		Matches: []Match{{Arg: 1, Op: OpPrefix, Strings: []string{filepath.Dir(dropped)}}}, Actions: ActPost,
	}}}

	base, err := LoadBase(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	opts := func(run uint16) Options { return Options{RunTag: run, ExecCreds: base.ExecCreds()} }
	if _, err := AdoptDispatcher(filepath.Join(dir, "none"), base.Events(), opts(2), ""); !errors.Is(err, ErrNotAdopted) {
		t.Fatalf("adopting from an empty directory: %v, want ErrNotAdopted", err)
	}
	pinned := filepath.Join(dir, "run1")
	first, err := NewDispatcher(base.Events(), opts(1), pinned)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Add(keptSpec()); err != nil {
		t.Fatal(err)
	}
	scoped, err := first.Add(droppedSpec)
	if err != nil {
		t.Fatal(err)
	}
	if err := scoped.SetCgroups([]uint64{cgroupID(t, cg)}); err != nil {
		t.Fatal(err)
	}
	progs := dispatcherProgs(t, first)
	firstSets := attachedSets(t, first)
	if len(firstSets) == 0 {
		t.Fatal("the first run attached no filter")
	}
	// the run exits and keeps its sensors: handles closed, pins left
	first.Close()

	rd, err := ringbuf.NewReader(base.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// opened opens kept, and dropped from a process of the cgroup, and
	// returns the records of the watched hooks, as "<hook id>/<run>"
	opened := func() []string {
		t.Helper()
		drainDecoded(t, rd)
		fd, err := syscall.Open(kept, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.Close(fd)
		catIn(t, cg, dropped)
		var out []string
		for _, r := range drainRecords(t, rd) {
			if r.HookID == 7 || r.HookID == 8 {
				out = append(out, fmt.Sprintf("%d/%d", r.HookID, r.Run))
			}
		}
		slices.Sort(out)
		return out
	}
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: records %v, want %v", what, got, want)
		}
	}
	expect("the pinned dispatcher, nobody running", opened(), "7/1", "8/1")
	confs := func(d *Dispatcher) int {
		t.Helper()
		var n int
		var slot uint32
		var c []byte
		it := d.objs.Confs.Iterate()
		for it.Next(&slot, &c) {
			n++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// a set naming another program than the link's is stale: it tells
	// nothing, and the slot decides every call
	recorded, err := ebpf.LoadPinnedMap(filepath.Join(pinned, "attached_sets"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer recorded.Close()
	saved := map[uint8]bpf.DispatchAttachedSet{}
	for when := range firstSets {
		var set bpf.DispatchAttachedSet
		if err := recorded.Lookup(setKey(when), &set); err != nil {
			t.Fatal(err)
		}
		saved[when] = set
		set.ProgId++
		if err := recorded.Put(setKey(when), &set); err != nil {
			t.Fatal(err)
		}
	}
	stale, err := AdoptDispatcher(pinned, base.Events(), opts(2), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := attachedSets(t, stale); len(got) != 0 {
		t.Errorf("adopted with stale sets, the attached filters pass %v, want unknown sets", got)
	}
	if err := stale.Close(); err != nil {
		t.Fatal(err)
	}
	for when, set := range saved {
		if err := recorded.Put(setKey(when), &set); err != nil {
			t.Fatal(err)
		}
	}

	// a hook of another key whose id is an adopted hook's (the ids of
	// two policies can collide in another order than the last run's):
	// not the same hook, so the adopted one keeps enforcing
	collided, err := AdoptDispatcher(pinned, base.Events(), opts(2), "")
	if err != nil {
		t.Fatal(err)
	}
	other := keptSpec()
	other.Key = 7777
	if _, err := collided.Add(other); err != nil {
		t.Fatal(err)
	}
	expect("another policy's hook of the same id", opened(), "7/1", "7/2", "8/1")
	if err := collided.Close(); err != nil {
		t.Fatal(err)
	}
	expect("after another policy's hook of the same id", opened(), "7/1", "8/1")

	// a start that fails
	links := openLinks(t)
	second, err := AdoptDispatcher(pinned, base.Events(), opts(2), filepath.Join(dir, "run2"))
	if err != nil {
		t.Fatal(err)
	}
	// each pinned link opened once: a second handle of one would be
	// dropped unclosed (both directions list io_uring's)
	if got, want := openLinks(t), links+len(second.links); got != want {
		t.Errorf("adopting opened %d link handles for the dispatcher's %d links", got-links, len(second.links))
	}
	if got := dispatcherProgs(t, second); !slices.Equal(got, progs) {
		t.Fatalf("adopted programs %v, want the pinned %v", got, progs)
	}
	if _, err := second.Add(keptSpec()); err != nil {
		t.Fatal(err)
	}
	expect("the failing start's hook replacing its predecessor", opened(), "7/2", "8/1")
	second.Unpin()
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openLinks(t); got != links {
		t.Errorf("%d link handles open after the adopted dispatcher's Close, want %d as before it", got, links)
	}
	expect("after the failed start", opened(), "7/1", "8/1")

	// a start that succeeds
	third, err := AdoptDispatcher(pinned, base.Events(), opts(3), filepath.Join(dir, "run3"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		third.Unpin()
		third.Close()
	}()
	// the attached filters' sets, from what the first run recorded
	if got := attachedSets(t, third); !maps.EqualFunc(got, firstSets, slices.Equal) {
		t.Errorf("the adopted attached filters pass %v, want the first run's %v", got, firstSets)
	}
	if n := confs(third); n != 2 {
		t.Errorf("the failed start left %d hook configurations, want the first run's 2", n)
	}
	h, err := third.Add(keptSpec())
	if err != nil {
		t.Fatal(err)
	}
	if err := third.ReleaseAdopted(); err != nil {
		t.Fatal(err)
	}
	if err := RemovePinned(pinned); err != nil {
		t.Fatal(err)
	}
	expect("the next run, the first run's pins gone", opened(), "7/3")
	// the set is the one the first run attached with: its filters decide
	// alone again, the slots empty
	for when := range firstSets {
		var id ebpf.ProgramID
		if err := third.chain(when).Lookup(slotFilter, &id); !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.Errorf("the %s slot after the release: program %d (%v), want empty", whenName(when), id, err)
		}
	}
	if n := confs(third); n != 1 {
		t.Errorf("%d hook configurations after the release, want this run's 1", n)
	}
	var key []byte
	var one uint8
	var strs int
	it := third.objs.Strings.Iterate()
	for it.Next(&key, &one) {
		strs++
	}
	if want := len(h.e.keys) + len(h.e.preKeys); strs != want {
		t.Errorf("%d match strings after the release, want this run's hook's %d", strs, want)
	}
	if got := dispatcherProgs(t, third); !slices.Equal(got, progs) {
		t.Errorf("programs %v after the release, want the first run's %v", got, progs)
	}
	var ck []byte
	if err := third.objs.HookCgroups.NextKey(nil, &ck); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("the dropped hook's cgroups are still in hook_cgroups: %v", err)
	}
}

// attachedSets are the syscalls each of d's attached filters passes, by
// direction, where d knows them.
func attachedSets(t *testing.T, d *Dispatcher) map[uint8][]int64 {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	sets := map[uint8][]int64{}
	for when, f := range d.attached {
		if f.err != nil || f.all {
			t.Errorf("the attached %s filter passes every call: %v", whenName(when), f.err)
		}
		sets[when] = f.nrs
	}
	return sets
}

// openLinks counts the process's open BPF link handles.
func openLinks(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, fd := range fds {
		// "bpf_link" as attached, "bpf-link" as opened by id; a
		// descriptor closed since the listing (ReadDir's own) has none
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && (target == "anon_inode:bpf_link" || target == "anon_inode:bpf-link") {
			n++
		}
	}
	return n
}

// dispatcherProgs are the ids of the dispatcher's programs.
func dispatcherProgs(t *testing.T, d *Dispatcher) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	for _, p := range []*ebpf.Program{d.objs.GenSysEnter, d.objs.GenSysExit, d.objs.RunSysEnter, d.objs.RunSysExit, d.objs.UringSubmit, d.objs.UringComplete} {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids = append(ids, id)
	}
	return ids
}
