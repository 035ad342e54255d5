package sensor

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestSearchInsns runs searchInsns' code in the kernel, for every
// syscall number and -1, on sets of every size the search treats
// differently: as a syscall program that reads the number from its
// context, it must pass exactly the set.
func TestSearchInsns(t *testing.T) {
	testutil.RequireRoot(t)
	rng := rand.New(rand.NewPCG(1, 2))
	sets := [][]int64{{0}, {511}, {0, 511}, {4, 5, 6, 7, 8}}
	for _, n := range []int{3, 4, 5, 9, 21, 64, 300, 512} {
		var set []int64
		for _, v := range rng.Perm(int(sysTableLen))[:n] {
			set = append(set, int64(v))
		}
		sets = append(sets, slices.Sorted(slices.Values(set)))
	}
	for _, set := range sets {
		insns := append(asm.Instructions{asm.LoadMem(asm.R1, asm.R1, 0, asm.DWord)}, searchInsns(asm.R1, set, "in", "out")...)
		insns = append(insns,
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return(),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("in"), asm.Return())
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type:         ebpf.Syscall,
			Flags:        unix.BPF_F_SLEEPABLE,
			License:      "Dual BSD/GPL",
			Instructions: insns,
		})
		if err != nil {
			t.Fatalf("set of %d: %v", len(set), err)
		}
		ctx := make([]byte, 8)
		for nr := int64(-1); nr < int64(sysTableLen); nr++ {
			binary.NativeEndian.PutUint64(ctx, uint64(nr))
			ret, err := prog.Run(&ebpf.RunOptions{Context: ctx})
			if err != nil {
				t.Fatal(err)
			}
			if _, in := slices.BinarySearch(set, nr); (ret == 1) != in || ret > 1 {
				t.Fatalf("set of %d: %d gave %d, in the set: %v", len(set), nr, ret, in)
			}
		}
		prog.Close()
	}
}

// filterTestDispatcher is a dispatcher with no hook yet, closed when the
// test ends, and a file of "x" for its hooks to watch.
func filterTestDispatcher(t *testing.T) (*Dispatcher, string) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	target := filepath.Join(t.TempDir(), "tetragon")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := NewDispatcher(newRing(t), Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, target
}

// killOpen is a hook of syscall nr, read as openat, that kills the
// opener of target.
func killOpen(nr uint32, target string) HookSpec {
	return HookSpec{
		ID:       nr,
		Syscalls: map[uint32]Syscall{nr: openFamily[257]},
		Args:     openArgs(),
		Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}},
			Actions: ActSigkill,
		}},
	}
}

// TestSysFilterFollowsLists: each direction's filter passes exactly the
// mapped syscalls, and a syscall that gets its first hook is served from
// the moment Add returns (the filter that would hide it is replaced before
// its list is written). The filter attached with a direction's first hook
// decides alone (its chain slot empty) whenever the set is the one it was
// attached with, and the slot's filter decides otherwise.
func TestSysFilterFollowsLists(t *testing.T) {
	d, target := filterTestDispatcher(t)
	// the syscalls the exit direction passes besides the path changers,
	// and whether the chain's slot decides: then the slot holds the
	// filter d keeps as the slot's, else it is empty and the attached
	// filter, of known syscalls, decides
	exitNrs := func() ([]int64, bool) {
		t.Helper()
		d.mu.Lock()
		defer d.mu.Unlock()
		var inSlot ebpf.ProgramID
		err := d.objs.SysExitChain.Lookup(slotFilter, &inSlot)
		f, slot := d.filters[OnExit], true
		switch {
		case f == nil && errors.Is(err, ebpf.ErrKeyNotExist):
			if f, slot = d.attached[OnExit], false; f == nil || f.all || f.nrs == nil {
				t.Fatalf("the exit slot is empty, and the attached filter is %+v", f)
			}
		case f == nil:
			t.Fatalf("the exit slot holds program %d (%v), which the dispatcher does not know", inSlot, err)
		case err != nil:
			t.Fatalf("the exit chain's filter slot: %v", err)
		default:
			if info, err := f.prog.Info(); err != nil {
				t.Fatal(err)
			} else if id, _ := info.ID(); id != inSlot {
				t.Fatalf("the exit chain's filter slot holds program %d, not the filter (%d)", inSlot, id)
			}
		}
		return slices.DeleteFunc(slices.Clone(f.nrs), func(nr int64) bool {
			return slices.Contains(d.layout.pathChangers, nr)
		}), slot
	}
	wantExit := func(what string, want []int64, wantSlot bool) {
		t.Helper()
		if got, slot := exitNrs(); !slices.Equal(got, want) || slot != wantSlot {
			t.Fatalf("%s: the exit direction passes %v (by the slot's filter: %v), want %v (%v)", what, got, slot, want, wantSlot)
		}
	}
	kill := func(nr uint32) HookSpec { return killOpen(nr, target) }

	// open (2) first: the attached exit filter passes its index alone
	open, err := d.Add(kill(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.FilterErr(); err != nil {
		t.Fatal(err)
	}
	wantExit("after hooking open", []int64{2}, false)
	// then openat (257), which cat calls: killed at once
	openat, err := d.Add(kill(257))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cat", target).Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s after hooking openat: %v, want killed by SIGKILL", target, err)
	}
	wantExit("after hooking openat", []int64{2, 257}, true)
	// the last hook of open gone: the filter shrinks, openat still kills
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	wantExit("after unhooking open", []int64{257}, true)
	if err := exec.Command("cat", target).Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s after unhooking open: %v, want killed by SIGKILL", target, err)
	}
	// open again, and openat gone: the set the filter was attached with,
	// which decides alone again
	if open, err = d.Add(kill(2)); err != nil {
		t.Fatal(err)
	}
	if err := openat.Close(); err != nil {
		t.Fatal(err)
	}
	wantExit("after hooking open again and unhooking openat", []int64{2}, false)
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s with open hooked alone: %v %q", target, err, out)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s with no hook: %v %q", target, err, out)
	}
	if err := d.FilterErr(); err != nil {
		t.Fatal(err)
	}
}

// TestAttachedFilterFallback: when the kernel refuses a direction's
// filter at its first hook, the object's program is attached instead,
// which passes every call on (so the hook enforces at once), and
// FilterErr says so for as long as it is attached, also after a later
// swap puts a filter of the exact set in the slot.
func TestAttachedFilterFallback(t *testing.T) {
	d, target := filterTestDispatcher(t)
	// an offset past pt_regs: the verifier refuses every exit filter of
	// syscalls, not the one that passes every call
	d.mu.Lock()
	good := d.layout.origAxOff
	d.layout.origAxOff = 32000
	d.mu.Unlock()
	openat, err := d.Add(killOpen(257, target))
	if err != nil {
		t.Fatal(err)
	}
	defer openat.Close()
	if err := exec.Command("cat", target).Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s with the exit filter refused: %v, want killed by SIGKILL", target, err)
	}
	err = d.FilterErr()
	if err == nil || !strings.Contains(err.Error(), "the attached sys_exit filter") {
		t.Fatalf("FilterErr with the exit filter refused: %v", err)
	}
	d.mu.Lock()
	if a := d.attached[OnExit]; a == nil || !a.all || a.prog != nil {
		t.Fatalf("the attached exit program is %+v, want the object's, which passes every call", a)
	}
	d.layout.origAxOff = good
	d.mu.Unlock()

	// a filter the kernel takes again: the slot's is of the exact set,
	// and the attached program is still the object's
	open, err := d.Add(killOpen(2, target))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := exec.Command("cat", target).Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s after the exit filter loads again: %v, want killed by SIGKILL", target, err)
	}
	err = d.FilterErr()
	if err == nil || !strings.Contains(err.Error(), "the attached sys_exit filter") || strings.Contains(err.Error(), "the sys_exit filter:") {
		t.Fatalf("FilterErr with the exit filter in the slot: %v, want the attached filter's error alone", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.filters[OnExit]
	if f == nil || f.all || !slices.Contains(f.nrs, 2) || !slices.Contains(f.nrs, 257) {
		t.Fatalf("the exit slot's filter is %+v, want one of open and openat", f)
	}
}
