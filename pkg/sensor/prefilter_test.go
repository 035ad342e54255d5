package sensor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestPrefilterEligible checks which hooks get prefilter values, and
// which: every selector must need the string to equal or start with a
// value, in the same string slot.
func TestPrefilterEligible(t *testing.T) {
	args := []Arg{
		{Source: SrcReg, Reg: 0, Kind: KindInt, Size: 4},
		{Source: SrcRegKFile, Reg: 1, Kind: KindPath},
		{Source: SrcRegKFile, Reg: 2, Kind: KindPath},
	}
	prefix := func(arg int, op Op, vals ...string) Match { return Match{Arg: arg, Op: op, Strings: vals} }
	for _, c := range []struct {
		name string
		sels []Selector
		pre  uint8
		vals []string // as prefixes: Equal values end in NUL
	}{
		{"no selectors", nil, 0, nil},
		{"prefix", []Selector{{Matches: []Match{prefix(1, OpPrefix, "/etc/", "/root/")}}}, 1, []string{"/etc/", "/root/"}},
		{"a value twice", []Selector{
			{Matches: []Match{prefix(1, OpPrefix, "/etc/")}},
			{Matches: []Match{prefix(1, OpPrefix, "/etc/")}},
		}, 1, []string{"/etc/"}},
		{"equal", []Selector{{Matches: []Match{prefix(1, OpEqual, "/etc/shadow")}}}, 1, []string{"/etc/shadow\x00"}},
		{"two selectors, same slot", []Selector{
			{Matches: []Match{prefix(1, OpPrefix, "/etc/")}},
			{Matches: []Match{{Arg: 0, Op: OpEqual, Ints: []int64{3}}, prefix(1, OpEqual, "/tmp/x")}},
		}, 1, []string{"/etc/", "/tmp/x\x00"}},
		{"a selector without a string", []Selector{
			{Matches: []Match{prefix(1, OpPrefix, "/etc/")}},
			{Matches: []Match{{Arg: 0, Op: OpEqual, Ints: []int64{3}}}},
		}, 0, nil},
		{"NotPrefix", []Selector{{Matches: []Match{prefix(1, OpNotPrefix, "/etc/")}}}, 0, nil},
		{"Postfix", []Selector{{Matches: []Match{prefix(1, OpPostfix, ".key")}}}, 0, nil},
		{"two slots, one selector each", []Selector{
			{Matches: []Match{prefix(1, OpPrefix, "/etc/")}},
			{Matches: []Match{prefix(2, OpPrefix, "abc")}},
		}, 0, nil},
		{"both slots in one selector", []Selector{
			{Matches: []Match{prefix(1, OpPrefix, "/etc/"), prefix(2, OpEqual, "abc")}},
		}, 3, []string{"/etc/", "abc\x00"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var next uint16
			conf, keys, err := encodeConf(HookSpec{ID: 1, Args: args, Selectors: c.sels}, func() (uint16, error) { next++; return next, nil })
			if err != nil {
				t.Fatal(err)
			}
			pre, union := prefilter(&conf, keys)
			if pre != c.pre {
				t.Fatalf("string slots %#b, want %#b", pre, c.pre)
			}
			var got []string
			for _, k := range union {
				if k.Slot != unionSlot(0) && k.Slot != unionSlot(1) {
					t.Errorf("value in match slot %d, want a union's", k.Slot)
				}
				got = append(got, string(k.Data[:(k.Prefixlen-16)/8]))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.vals))
			if !slices.Equal(got, want) {
				t.Fatalf("values %q, want %q", got, want)
			}
		})
	}
}

// TestPointsPrefilter runs many hooks of one function behind the
// prefilter: a file under none of their prefixes runs no hook (the
// object counts it passed over), a file under one prefix is reported by
// that hook alone, a hook's values leave with it, and a hook the
// prefilter cannot serve turns it off.
func TestPointsPrefilter(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	testutil.RequireFeature(t, "bpf_loop")
	dir := t.TempDir()
	const n = 10
	file := func(i int) string { return filepath.Join(dir, fmt.Sprintf("p%d", i), "f") }
	plain := filepath.Join(dir, "plain")
	writeX(t, plain)
	for i := range n {
		writeX(t, file(i))
	}
	ring, rd := ringReader(t)
	ps, err := NewPoints(ring, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	stage := func(id uint32, sel Selector) *ProgHook {
		t.Helper()
		sel.Actions = ActPost
		h, err := ps.Stage(ProgHookSpec{ID: id, Symbol: "fd_install", Params: 2, Args: fdInstallArgs, Selectors: []Selector{sel}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Swap([]*ProgHook{h}, nil); err != nil {
			t.Fatal(err)
		}
		return h
	}
	hooks := make([]*ProgHook, n)
	for i := range n {
		hooks[i] = stage(uint32(100+i), Selector{Matches: []Match{{Arg: 1, Op: OpPrefix, Strings: []string{filepath.Dir(file(i)) + "/"}}}})
	}
	list := func() bpf.HookPointList {
		t.Helper()
		var l bpf.HookPointList
		if err := hooks[0].p.coll.Maps["hooks"].Lookup(uint32(0), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := list(); l.N != n || l.Pre != 1 {
		t.Fatalf("list of %d hooks with prefilter %d: want %d hooks, prefilter 1 (string slot 0)", l.N, l.Pre, n)
	}
	records := func() []uint32 { t.Helper(); return hookIDs(drainRecords(t, rd)) }
	read := func(path string, times int) {
		t.Helper()
		for range times {
			if _, err := os.ReadFile(path); err != nil {
				t.Fatal(err)
			}
		}
	}
	stats := func() GenericStats {
		t.Helper()
		st, err := hooks[1].Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	before := stats()
	read(plain, 20)
	after := stats()
	if after.Passed < before.Passed+20 || after.Calls < before.Calls+20 || after.Matched != before.Matched {
		t.Fatalf("20 reads of a file no hook watches: counters before %+v after %+v: want 20 more calls, all passed over", before, after)
	}
	if ids := records(); len(ids) != 0 {
		t.Fatalf("records of hooks %v for a file no hook watches", ids)
	}
	read(file(3), 1)
	read(file(7), 1)
	if ids := records(); !slices.Equal(ids, []uint32{103, 107}) {
		t.Fatalf("records of hooks %v, want 103 then 107", ids)
	}

	// hook 3 leaves, and its prefix with it; hook 7's stays
	if err := hooks[3].Close(); err != nil {
		t.Fatal(err)
	}
	if u := hooks[0].p.tables.union; len(u) != n-1 || u[hooks[7].e.preKeys[0]] != 1 {
		t.Fatalf("union after hook 3 left: %v", u)
	}
	read(file(3), 1)
	read(file(7), 1)
	if ids := records(); !slices.Equal(ids, []uint32{107}) {
		t.Fatalf("records of hooks %v, want 107 alone", ids)
	}

	// a hook on the fd, an integer: the list runs every hook again
	fd := stage(200, Selector{Matches: []Match{{Arg: 0, Op: OpEqual, Ints: []int64{-5}}}})
	defer fd.Close()
	if l := list(); l.Pre != 0 {
		t.Fatalf("prefilter %d with a hook it cannot serve, want none", l.Pre)
	}
	before = stats()
	read(plain, 20)
	after = stats()
	if after.Passed != before.Passed || after.Calls < before.Calls+20 {
		t.Fatalf("without the prefilter: counters before %+v after %+v: want 20 more calls, none passed over", before, after)
	}
	read(file(7), 1)
	if ids := records(); !slices.Equal(ids, []uint32{107}) {
		t.Fatalf("records of hooks %v, want 107 alone", ids)
	}
	for i, h := range hooks {
		if i != 3 {
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDispatcherSameArgs loads hooks of one shape and one of another on
// the open family: the pairs after the first of the shape read the call
// as the one before (SE_SAME_ARGS), and each still matches its own file.
// A pair skipped before reading (a successful-calls-only hook on a failed
// open) leaves the record as it was, so the next pair reads the call
// itself: its match on the failed open's return proves it.
func TestDispatcherSameArgs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "f0"), filepath.Join(dir, "f1"), filepath.Join(dir, "f2")}
	writeX(t, files...)
	ring, rd := ringReader(t)
	d, err := NewDispatcher(ring, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	add := func(spec HookSpec) {
		t.Helper()
		h, err := d.Add(spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
	}
	for i, f := range files {
		add(HookSpec{ID: uint32(10 + i), Syscalls: openFamily, Args: openArgs(),
			Selectors: []Selector{{Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{f}}}, Actions: ActPost}}})
	}
	// every open, failed ones too: the same reading, not the same flags
	failed := map[uint32]Syscall{}
	for nr, sc := range openFamily {
		sc.Flags &^= RetOK
		failed[nr] = sc
	}
	add(HookSpec{ID: 20, Syscalls: failed, Args: openArgs(),
		Selectors: []Selector{{Matches: []Match{{Arg: 0, Op: OpEqual, Ints: []int64{-int64(syscall.ENOENT)}}}, Actions: ActPost}}})
	// another shape: the file alone
	add(HookSpec{ID: 30, Syscalls: openFamily, Args: []Arg{{Source: SrcRetFile, Kind: KindPath}},
		Selectors: []Selector{{Matches: []Match{{Arg: 0, Op: OpEqual, Strings: []string{files[0]}}}, Actions: ActPost}}})

	var l bpf.DispatchSysList
	if err := d.objs.SysLists.Lookup(uint32(257)|uint32(OnExit)<<whenShift, &l); err != nil {
		t.Fatal(err)
	}
	var same []bool
	for _, p := range l.P[:l.N] {
		same = append(same, p.Flags&uint8(bpf.DispatchSysFlagSE_SAME_ARGS) != 0)
	}
	if want := []bool{false, true, true, true, false}; !slices.Equal(same, want) {
		t.Fatalf("openat's pairs read the call again: %v, want %v", same, want)
	}

	type rec struct {
		id  uint32
		ret int64
		str string
	}
	records := func() []rec {
		t.Helper()
		var out []rec
		for _, g := range drainRecords(t, rd) {
			// hook 20's failed opens: this process's alone
			if g.HookID != 20 || g.Pid == uint32(os.Getpid()) {
				out = append(out, rec{g.HookID, g.Ints[0], g.Strs[0]})
			}
		}
		return out
	}
	for i := range files {
		fd, err := syscall.Open(files[i], syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := records()
		syscall.Close(fd)
		want := []rec{{uint32(10 + i), int64(fd), files[i]}}
		if i == 0 {
			want = append(want, rec{30, 0, files[0]})
		}
		if len(got) != len(want) || got[0] != want[0] || (i == 0 && got[1].id != 30) {
			t.Fatalf("open of %s: records %+v, want %+v", files[i], got, want)
		}
	}
	if _, err := syscall.Open(filepath.Join(dir, "missing"), syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err != syscall.ENOENT {
		t.Fatalf("open of a missing file: %v", err)
	}
	if got := records(); len(got) != 1 || got[0].id != 20 || got[0].ret != -int64(syscall.ENOENT) {
		t.Fatalf("failed open: records %+v, want hook 20's with -ENOENT", got)
	}
}

// TestDispatcherPrefilter loads hooks of one shape that the verdict cache
// cannot serve (each also filters on the returned fd): their syscall
// lists get the prefilter, an open of a file none of them names runs no
// selector (the lists count it passed over), and each watched file is
// reported by its own hook alone.
func TestDispatcherPrefilter(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "f0"), filepath.Join(dir, "f1"), filepath.Join(dir, "f2")}
	writeX(t, files...)
	plain := filepath.Join(dir, "plain")
	writeX(t, plain)
	ring, rd := ringReader(t)
	d, err := NewDispatcher(ring, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hooks := make([]*DataHook, len(files))
	for i, f := range files {
		hooks[i], err = d.Add(HookSpec{ID: uint32(10 + i), Syscalls: openFamily, Args: openArgs(), Selectors: []Selector{{
			Matches: []Match{{Arg: 0, Op: OpGT, Ints: []int64{-1}}, {Arg: 1, Op: OpEqual, Strings: []string{f}}},
			Actions: ActPost,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		defer hooks[i].Close()
		if hooks[i].cache {
			t.Fatalf("hook %d is cacheable: the prefilter would not be what decides", i)
		}
	}
	var l bpf.DispatchSysList
	if err := d.objs.SysLists.Lookup(uint32(257)|uint32(OnExit)<<whenShift, &l); err != nil {
		t.Fatal(err)
	}
	if l.N != 3 || l.Pre != 1 {
		t.Fatalf("openat's list: %d pairs, prefilter %d; want 3 and 1 (string slot 0)", l.N, l.Pre)
	}
	ids := func() []uint32 { t.Helper(); return hookIDs(drainRecords(t, rd)) }
	open := func(path string) {
		t.Helper()
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		syscall.Close(fd)
	}
	before, err := hooks[0].Stats()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		open(plain)
	}
	after, err := hooks[0].Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.Passed < before.Passed+20 || after.Matched != before.Matched {
		t.Fatalf("20 opens of a file no hook names: counters before %+v after %+v: want 20 more decided by the prefilter", before, after)
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("records of hooks %v for a file no hook names", got)
	}
	open(files[1])
	open(files[2])
	if got := ids(); !slices.Equal(got, []uint32{11, 12}) {
		t.Fatalf("records of hooks %v, want 11 then 12", got)
	}
}

// drainRecords returns the hook records rd holds now, in order, waiting
// 200 ms for each.
func drainRecords(t *testing.T, rd *ringbuf.Reader) []*observer.HookRecord {
	t.Helper()
	var out []*observer.HookRecord
	for _, v := range drainDecoded(t, rd) {
		if g, ok := v.(*observer.HookRecord); ok {
			out = append(out, g)
		}
	}
	return out
}

// drainDecoded returns every record rd holds now, decoded, in order,
// waiting 200 ms for each.
func drainDecoded(t *testing.T, rd *ringbuf.Reader) []any {
	t.Helper()
	var out []any
	for _, raw := range testutil.DrainRing(t, rd, 200*time.Millisecond) {
		// a decoder per record: a record may point into its decoder
		var dec observer.Decoder
		v, err := dec.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// hookIDs are the records' hook ids, in order.
func hookIDs(recs []*observer.HookRecord) []uint32 {
	var ids []uint32
	for _, g := range recs {
		ids = append(ids, g.HookID)
	}
	return ids
}

// writeX writes "x" to each path, making its directory.
func writeX(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ringReader makes a ring buffer and a reader of it, closed with the test.
func ringReader(t *testing.T) (*ebpf.Map, *ringbuf.Reader) {
	t.Helper()
	ring := newRing(t)
	rd, err := ringbuf.NewReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return ring, rd
}
