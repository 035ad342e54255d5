package sensor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// The slots of a direction's chain (bpf/dispatch.c).
const (
	slotFilter = uint32(bpf.DispatchChainSlotCS_FILTER)
	slotRun    = uint32(bpf.DispatchChainSlotCS_RUN)
)

// sysFilter is one direction's filter: a program that holds the syscalls
// it passes to the run as comparisons in its code. It exists because a
// call no hook maps would otherwise load its head from map memory, which
// on a paravirtualized guest costs more than the rest of the call
// (docs/performance.md, "The filter").
type sysFilter struct {
	nrs  []int64 // the syscall numbers it passes, sorted
	prog *ebpf.Program
}

// filterLayout is what a filter reads, from the kernel's BTF and the
// dispatcher object's.
type filterLayout struct {
	// compatOff is the offset of thread_info.status in task_struct; -1
	// when the kernel has none (the dispatcher serves no 32-bit call
	// then, and neither need the filter)
	compatOff int32
	origAxOff int32 // of orig_ax in pt_regs: sys_exit's syscall number
	// pathChangers are the syscalls whose calls bump the verdict cache's
	// generation (enum path_changer): the filters always pass them
	pathChangers []int64
}

func newFilterLayout(kernel, object *btf.Spec) (filterLayout, error) {
	var l filterLayout
	var changers *btf.Enum
	if err := object.TypeByName("path_changer", &changers); err != nil {
		return l, fmt.Errorf("the dispatcher object's path_changer: %w", err)
	}
	for _, v := range changers.Values {
		l.pathChangers = append(l.pathChangers, int64(v.Value))
	}
	off, err := memberOffset(kernel, "pt_regs", "orig_ax")
	if err != nil {
		return l, err
	}
	l.origAxOff = int32(off)
	// no thread_info.status: no 32-bit call is told apart, here as in
	// bpf/dispatch.c in_compat_call
	l.compatOff = -1
	ti, err := memberOffset(kernel, "task_struct", "thread_info")
	if err == nil {
		if status, err := memberOffset(kernel, "thread_info", "status"); err == nil {
			l.compatOff = int32(ti + status)
		}
	}
	return l, nil
}

// memberOffset is the byte offset of a struct's member in the kernel.
func memberOffset(spec *btf.Spec, typ, member string) (uint32, error) {
	var s *btf.Struct
	if err := spec.TypeByName(typ, &s); err != nil {
		return 0, fmt.Errorf("kernel BTF: struct %s: %w", typ, err)
	}
	for _, m := range s.Members {
		if m.Name == member {
			return m.Offset.Bytes(), nil
		}
	}
	return 0, fmt.Errorf("kernel BTF: struct %s has no %s", typ, member)
}

// filterNrs returns, per direction, the syscalls whose lists exist,
// with the path changers, sorted.
func (d *Dispatcher) filterNrs(lists map[uint32][]*DataHook) map[uint8][]int64 {
	nrs := map[uint8][]int64{}
	for _, when := range []uint8{OnEnter, OnExit} {
		nrs[when] = slices.Clone(d.layout.pathChangers)
	}
	for key := range lists {
		when := uint8(key >> whenShift)
		nrs[when] = append(nrs[when], int64(key&(1<<whenShift-1)))
	}
	for when, s := range nrs {
		slices.Sort(s)
		nrs[when] = slices.Compact(s)
	}
	return nrs
}

// unfilter empties the filter slot of each direction whose filter would
// hide a syscall of nrs: its calls then all run, and the run reads the
// heads. It runs before lists are written, so that no call of a newly
// mapped syscall is settled as unmapped. d.mu is held.
func (d *Dispatcher) unfilter(nrs map[uint8][]int64) error {
	for when, f := range d.filters {
		if subset(nrs[when], f.nrs) {
			continue
		}
		if err := d.chain(when).Delete(slotFilter); err != nil {
			return fmt.Errorf("taking the %s filter out: %w", whenName(when), err)
		}
		f.prog.Close()
		delete(d.filters, when)
	}
	return nil
}

// refilter gives each direction a filter of exactly nrs, once the lists
// are written. A filter is verified only when its set changes: when a
// syscall gets its first hook or loses its last. A filter that cannot be
// loaded leaves the direction's calls all running, which is correct and
// slower; FilterErr says why until a swap has both filters. d.mu is held.
func (d *Dispatcher) refilter(nrs map[uint8][]int64) {
	d.filterErr = nil
	for _, when := range []uint8{OnEnter, OnExit} {
		if f := d.filters[when]; f != nil && slices.Equal(f.nrs, nrs[when]) {
			continue
		}
		prog, err := d.newFilter(when, nrs[when])
		if err == nil {
			// replaces the old filter at once: the jump to it is patched
			err = d.chain(when).Put(slotFilter, prog)
			if err != nil {
				prog.Close()
			}
		}
		if err != nil {
			d.filterErr = errors.Join(d.filterErr, fmt.Errorf("the %s filter: %w", whenName(when), err))
			continue
		}
		if old := d.filters[when]; old != nil {
			old.prog.Close()
		}
		d.filters[when] = &sysFilter{nrs: nrs[when], prog: prog}
	}
}

// FilterErr is why a direction of the dispatcher went without its filter
// at the last swap, if one did.
func (d *Dispatcher) FilterErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.filterErr
}

// chain is the prog array of one direction.
func (d *Dispatcher) chain(when uint8) *ebpf.Map {
	if when == OnExit {
		return d.objs.SysExitChain
	}
	return d.objs.SysEnterChain
}

// newFilter loads the filter of one direction for nrs: a 64-bit call of
// a syscall not in nrs returns at once; any other call goes on to the
// run. A 32-bit call always does, as its number is an i386 one.
func (d *Dispatcher) newFilter(when uint8, nrs []int64) (*ebpf.Program, error) {
	const pass, out = "pass", "out"
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	if d.layout.compatOff >= 0 {
		insns = append(insns,
			asm.FnGetCurrentTaskBtf.Call(),
			asm.LoadMem(asm.R1, asm.R0, int16(d.layout.compatOff), asm.Word),
			asm.JSet.Imm(asm.R1, int32(bpf.DispatchChainSlotCS_TS_COMPAT), pass),
		)
	}
	if when == OnExit {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord), // struct pt_regs *
			asm.LoadMem(asm.R1, asm.R1, int16(d.layout.origAxOff), asm.DWord))
	} else {
		insns = append(insns, asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord)) // long id
	}
	insns = append(insns, searchInsns(asm.R1, nrs, pass, out)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol(out),
		asm.Return(),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(pass),
		asm.LoadMapPtr(asm.R2, d.chain(when).FD()),
		asm.Mov.Imm(asm.R3, int32(slotRun)),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "filt_" + whenName(when),
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     whenName(when),
		Instructions: insns,
		License:      "Dual BSD/GPL",
	}, ebpf.ProgramOptions{KernelTypes: d.kernelTypes})
	if err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	return prog, nil
}

// searchInsns jumps to in when reg holds a value of sorted set, else to
// out, by a binary search of comparisons with immediates: the code holds
// the set, so the search reads no memory.
func searchInsns(reg asm.Register, set []int64, in, out string) asm.Instructions {
	var insns asm.Instructions
	labels := 0
	var search func(s []int64)
	search = func(s []int64) {
		if len(s) <= 4 {
			for _, v := range s {
				insns = append(insns, asm.JEq.Imm(reg, int32(v), in))
			}
			insns = append(insns, asm.Ja.Label(out))
			return
		}
		mid := len(s) / 2
		labels++
		below := fmt.Sprintf("below%d", labels)
		insns = append(insns, asm.JSLT.Imm(reg, int32(s[mid]), below))
		search(s[mid:])
		at := len(insns)
		search(s[:mid])
		insns[at] = insns[at].WithSymbol(below)
	}
	search(set)
	return insns
}

// subset reports whether every element of sorted a is in sorted b.
func subset(a, b []int64) bool {
	for _, v := range a {
		if _, ok := slices.BinarySearch(b, v); !ok {
			return false
		}
	}
	return true
}

func whenName(when uint8) string {
	if when == OnExit {
		return "sys_exit"
	}
	return "sys_enter"
}

// closeFilters closes the filters' files. The chains keep running
// them while they exist (pinned: the agent exits keeping its sensors).
// d.mu is held.
func (d *Dispatcher) closeFilters() error {
	var errs []error
	for when, f := range d.filters {
		errs = append(errs, f.prog.Close())
		delete(d.filters, when)
	}
	return errors.Join(errs...)
}
