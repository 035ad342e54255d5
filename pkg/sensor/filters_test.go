package sensor

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// everyFilter has one selector entry of each kind, with every flag.
var everyFilter = []Selector{
	{Matches: []Match{
		{Kind: MatchReturn, Op: OpLT, Ints: []int64{0}, Size: 4, Signed: true},
		{Kind: MatchArg, Arg: 1, Op: OpPostfix, Strings: []string{".key"}},
		{Kind: MatchNamespace, Arg: int(NsNet), Op: OpNotEqual, Ints: []int64{4026531840}},
		{Kind: MatchCaps, Arg: int(CapsEffective), Op: OpEqual, Ints: []int64{1 << 21}, HostUserNS: 4026531837},
		{Kind: MatchPID, Op: OpNotEqual, Ints: []int64{1}, NamespacePID: true},
		{Kind: MatchPID, Op: OpEqual, Ints: []int64{1}, Follow: true},
		{Kind: MatchBinary, Op: OpNotPostfix, Strings: []string{"/sh"}, Follow: true},
		{Kind: MatchBinary, Op: OpPrefix, Strings: []string{"/usr/"}},
	}, Actions: ActPost},
	{Matches: []Match{{Kind: MatchBinary, Op: OpEqual, Strings: []string{"/usr/bin/cat"}}}, Actions: ActPost},
}

// verified returns how many instructions the verifier processed for p.
func verified(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	n, ok := info.VerifiedInstructions()
	if !ok {
		t.Skip("the kernel does not report verified instructions")
	}
	return n
}

// TestFiltersVerify loads both hook objects with a selector entry of every
// kind and reports what the verifier processed: the selector code is
// shared (bpf/lib/hook.h). A kprobe hook pays it at every policy load, the
// syscall dispatcher once per agent (its programs serve every policy). The
// ceilings catch a change that makes the verifier walk the filters once per
// enclosing loop again (205k for one hook's gen_sys_exit before the process
// filters became global functions; 140k for the dispatcher's while its
// per-variant flags were on the stack). Measured on 6.18: gen_kprobe 41k
// (33k before the range, substring and file-type operators, skb arguments,
// socket tracking and stack traces).
func TestFiltersVerify(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "bpf_loop")
	g := addHook(t, HookSpec{ID: 1, Syscalls: map[uint32]Syscall{
		257: {Flags: OnExit, Variants: []Variant{{FD: VarFDRet}}}, 2: {Flags: OnEnter, Variants: []Variant{{FD: VarNoFD}}},
	}, Args: openArgs(), Selectors: everyFilter}, newRing(t))
	for _, p := range []*ebpf.Program{g.d.objs.RunSysEnter, g.d.objs.RunSysExit} {
		n := verified(t, p)
		t.Logf("syscall-tracepoint: %v verified in %d instructions", p, n)
		if n > 70000 {
			t.Errorf("%v: %d instructions verified, want at most 70000", p, n)
		}
	}
	for _, tc := range []struct {
		name string
		spec ProgHookSpec
	}{
		{"entry", ProgHookSpec{Symbol: "fd_install", Params: 2, Args: fdInstallArgs, Selectors: everyFilter}},
		{"return", ProgHookSpec{Symbol: "__x64_sys_openat", Syscall: true, SyscallNr: 257, Params: 3, Return: true,
			Args: []Arg{{Source: SrcRet, Kind: KindInt}, {Source: SrcRegUstr, Reg: 1, Kind: KindPath}}, Selectors: everyFilter}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := loadProgHook(tc.spec, newRing(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			for _, name := range k.p.progs {
				n := verified(t, k.p.coll.Programs[name])
				t.Logf("kprobe: %s verified in %d instructions", name, n)
				if n > 55000 {
					t.Errorf("%s: %d instructions verified, want at most 55000", name, n)
				}
			}
		})
	}
}

// TestEncodeFilters checks the configuration the kernel reads for the
// process filters, and that they turn the verdict cache off: the cache
// remembers files, and these verdicts depend on the caller.
func TestEncodeFilters(t *testing.T) {
	spec := HookSpec{Args: []Arg{{Source: SrcVarMask, Kind: KindInt}, {Source: SrcVarFile, Kind: KindPath}}, Selectors: []Selector{
		{Matches: []Match{{Kind: MatchArg, Arg: 1, Op: OpPrefix, Strings: []string{"/etc/"}}}},
	}}
	if !cacheable(spec) {
		t.Fatal("a file-only selector is not cacheable")
	}
	// scoped to cgroups (podSelector...): a miss holds for the caller's
	// cgroup only, so no list with the hook may remember it per file
	scoped := spec
	scoped.Scoped = true
	if cacheable(scoped) {
		t.Fatal("a scoped hook is cacheable")
	}
	if c, _, err := encodeConf(scoped, slotCounter()); err != nil || c.Scoped != 1 || c.Cacheable != 0 {
		t.Fatalf("scoped hook encoded as scoped %d, cacheable %d (%v)", c.Scoped, c.Cacheable, err)
	}
	// fd_install's file is the returned fd's: the variant's file when
	// every variant names the returned fd
	ret := HookSpec{Syscalls: map[uint32]Syscall{257: {Flags: OnExit, Variants: []Variant{{FD: VarFDRet}}}},
		Args:      openArgs(),
		Selectors: []Selector{{Matches: []Match{{Kind: MatchArg, Arg: 1, Op: OpEqual, Strings: []string{"/tmp/x"}}}}}}
	if !cacheable(ret) {
		t.Fatal("a selector on the returned fd's file is not cacheable")
	}
	ret.Syscalls[2] = Syscall{Flags: OnEnter, Variants: []Variant{{FD: VarNoFD}}}
	if cacheable(ret) {
		t.Fatal("a selector on the returned fd's file is cacheable with a variant of no fd")
	}
	ret.Syscalls = nil
	ret.Selectors[0].Matches[0].Arg = 0
	if cacheable(ret) {
		t.Fatal("a selector on the returned fd's number is cacheable")
	}
	spec.Selectors = append(spec.Selectors, everyFilter[0])
	if cacheable(spec) {
		t.Fatal("a hook with process filters is cacheable")
	}
	c, keys, err := encodeConf(spec, slotCounter())
	if err != nil {
		t.Fatal(err)
	}
	if c.Cacheable != 0 || c.Sel[1].Nmatch != 8 {
		t.Fatalf("cacheable %d, %d entries", c.Cacheable, c.Sel[1].Nmatch)
	}
	m := c.Sel[1].M
	for i, want := range []struct{ kind, flags, size, arg uint8 }{
		{uint8(MatchReturn), mfSigned, 4, 0}, {uint8(MatchArg), 0, 0, 1}, {uint8(MatchNamespace), 0, 0, uint8(NsNet)},
		{uint8(MatchCaps), mfNsCap, 0, uint8(CapsEffective)}, {uint8(MatchPID), mfNsPID, 0, 0},
		{uint8(MatchPID), mfFollow, 0, 0}, {uint8(MatchBinary), mfFollow, 0, 0}, {uint8(MatchBinary), 0, 0, 0},
	} {
		if m[i].Kind != want.kind || m[i].Flags != want.flags || m[i].Size != want.size || m[i].Arg != want.arg {
			t.Errorf("entry %d: %+v, want %+v", i, m[i], want)
		}
	}
	if m[3].Vals[0] != 1<<21 || m[3].Vals[1] != 4026531837 || m[3].Nvals != 1 {
		t.Errorf("capabilities entry %+v", m[3])
	}
	// /etc/, .key, /sh and /usr/: one key each, in the slot of its entry
	// (slots are given to entries that match strings only)
	if len(keys) != 4 || keys[3].Slot != 4 || m[7].Slot != 4 || m[0].Slot != 0 {
		t.Fatalf("keys %+v", keys)
	}

	for _, bad := range []Match{
		{Kind: MatchPID, Op: OpPrefix, Ints: []int64{1}},
		{Kind: MatchNamespace, Arg: 10, Op: OpEqual, Ints: []int64{1}},
		{Kind: MatchCaps, Arg: 0, Op: OpEqual},
		{Kind: MatchReturn, Op: OpEqual, Size: 3},
		{Kind: 9},
	} {
		if _, _, err := encodeConf(HookSpec{Selectors: []Selector{{Matches: []Match{bad}}}}, slotCounter()); err == nil {
			t.Errorf("%+v encoded", bad)
		}
	}
}
