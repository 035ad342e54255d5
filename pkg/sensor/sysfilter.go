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

// sysFilter is a filter of one direction: a program that holds the
// syscalls it passes to the run as comparisons in its code. It exists
// because a call no hook maps would otherwise load its head from map
// memory, which on a paravirtualized guest costs more than the rest of
// the call (docs/performance.md, "The filter").
//
// Each direction's attached program is the filter of the syscalls mapped
// when the direction was first used, which first jumps to the chain's
// filter slot: empty, the attached filter decides, with no tail call
// before the run's; filled, the filter there does. A raw tracepoint link
// cannot take another program, and two attached at once would serve a
// call twice or, handed over, not at all, so a later set goes into the
// slot, where it replaces the last one for the next call at once
// (docs/performance.md, "The chain's own cost").
type sysFilter struct {
	// nrs are the syscall numbers it passes, sorted; nil with all unset
	// when they are not known (a previous run's filter)
	nrs  []int64
	all  bool // it passes every call
	prog *ebpf.Program
	// err is why an attached direction runs the object's program, which
	// passes every call to the slot, instead of its own filter
	err error
}

// passes reports whether the filter is known to pass every syscall of
// sorted nrs.
func (f *sysFilter) passes(nrs []int64) bool {
	return f.all || (f.nrs != nil && subset(nrs, f.nrs))
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

// unfilter makes each attached direction pass every syscall of nrs
// before the lists are written, so that no call of a newly mapped syscall
// is settled as unmapped: a direction whose filter (the slot's, else the
// attached one) is not known to pass them all gets the filter that passes
// every call in its slot, and its calls all run and read the heads. On
// error the lists must not be written. d.mu is held.
func (d *Dispatcher) unfilter(nrs map[uint8][]int64) error {
	for _, when := range []uint8{OnEnter, OnExit} {
		if d.links[whenName(when)] == nil || d.deciding(when).passes(nrs[when]) {
			continue
		}
		if err := d.putFilter(when, nil, true); err != nil {
			return fmt.Errorf("making the %s filter pass every call: %w", whenName(when), err)
		}
	}
	return nil
}

// deciding is the filter that decides a direction's calls now: the
// slot's, else the attached one; one of unknown set when neither is this
// run's.
func (d *Dispatcher) deciding(when uint8) *sysFilter {
	if f := d.filters[when]; f != nil {
		return f
	}
	if f := d.attached[when]; f != nil {
		return f
	}
	return &sysFilter{}
}

// refilter gives each attached direction a filter of exactly nrs, once
// the lists are written: none in the slot when the attached filter is of
// nrs, else one there. A filter is verified only when its set changes: when
// a syscall gets its first hook or loses its last. A filter that cannot be
// loaded leaves the slot as unfilter left it, which passes every syscall of
// nrs and is slower; FilterErr says why until a swap has both filters.
// d.mu is held.
func (d *Dispatcher) refilter(nrs map[uint8][]int64) {
	d.filterErr = nil
	for _, when := range []uint8{OnEnter, OnExit} {
		if d.links[whenName(when)] == nil {
			continue
		}
		if a := d.attached[when]; a != nil && !a.all && slices.Equal(a.nrs, nrs[when]) {
			if err := d.emptySlot(when); err != nil {
				d.filterErr = errors.Join(d.filterErr, err)
			}
			continue
		}
		if f := d.filters[when]; f != nil && !f.all && slices.Equal(f.nrs, nrs[when]) {
			continue
		}
		if err := d.putFilter(when, nrs[when], false); err != nil {
			d.filterErr = errors.Join(d.filterErr, fmt.Errorf("the %s filter: %w", whenName(when), err))
		}
	}
}

// putFilter loads the slot's filter of nrs (of every call with all) and
// puts it in the direction's slot, where it replaces the last one for the
// next call. d.mu is held.
func (d *Dispatcher) putFilter(when uint8, nrs []int64, all bool) error {
	prog, err := d.newFilter(when, nrs, all, false)
	if err != nil {
		return err
	}
	if err := d.chain(when).Put(slotFilter, prog); err != nil {
		prog.Close()
		return err
	}
	if old := d.filters[when]; old != nil {
		old.prog.Close()
	}
	d.filters[when] = &sysFilter{nrs: nrs, all: all, prog: prog}
	return nil
}

// emptySlot takes the slot's filter out: the attached one decides again.
// d.mu is held.
func (d *Dispatcher) emptySlot(when uint8) error {
	f := d.filters[when]
	if f == nil {
		return nil
	}
	if err := d.chain(when).Delete(slotFilter); err != nil {
		return fmt.Errorf("taking the %s filter out: %w", whenName(when), err)
	}
	f.prog.Close()
	delete(d.filters, when)
	return nil
}

// attachFilter attaches a direction's filter of nrs, the first time a
// swap lists hooks there, before their lists are written, and records
// its set for a restart that adopts it (recordAttached). Where that
// filter cannot be loaded, the object's program is attached, which passes
// every call to the slot's filter (refilter puts one there), as before
// there were attached filters. d.mu is held.
func (d *Dispatcher) attachFilter(when uint8, nrs []int64) error {
	f := &sysFilter{nrs: nrs}
	var err error
	if f.prog, err = d.newFilter(when, nrs, false, true); err != nil {
		f = &sysFilter{all: true, err: fmt.Errorf("the attached %s filter: %w", whenName(when), err)}
	} else if err := d.recordAttached(when, f.prog, nrs); err != nil {
		f.prog.Close()
		return err
	}
	prog := f.prog
	if prog == nil {
		prog = d.program(when)
	}
	if err := d.attachLink(whenName(when), prog); err != nil {
		if f.prog != nil {
			f.prog.Close()
		}
		return err
	}
	d.attached[when] = f
	return nil
}

// recordAttached writes the set of the filter about to be attached in a
// direction, naming the filter, where a restart that adopts the
// dispatcher reads it (adoptAttached). d.mu is held.
func (d *Dispatcher) recordAttached(when uint8, prog *ebpf.Program, nrs []int64) error {
	id, err := programID(prog)
	if err != nil {
		return fmt.Errorf("the attached %s filter: %w", whenName(when), err)
	}
	s := bpf.DispatchAttachedSet{ProgId: uint32(id)}
	for _, nr := range nrs {
		s.Nrs[nr/64] |= 1 << (nr % 64)
	}
	if err := d.objs.AttachedSets.Put(setKey(when), &s); err != nil {
		return fmt.Errorf("recording the attached %s filter's set: %w", whenName(when), err)
	}
	return nil
}

// adoptAttached tells what the adopted link of a direction runs: the
// object's program, which passes every call to the slot; a filter of the
// set attached_sets names it with; else nil, a filter of a set this run
// does not know, for which the slot always decides.
func (d *Dispatcher) adoptAttached(when uint8) (*sysFilter, error) {
	info, err := d.links[whenName(when)].Info()
	if err != nil {
		return nil, fmt.Errorf("reading the %s link: %w", whenName(when), err)
	}
	own, err := programID(d.program(when))
	if err != nil {
		return nil, err
	}
	if info.Program == own {
		return &sysFilter{all: true, err: fmt.Errorf("the attached %s filter: the previous run attached the object's program, which passes every call", whenName(when))}, nil
	}
	var s bpf.DispatchAttachedSet
	if err := d.objs.AttachedSets.Lookup(setKey(when), &s); err != nil {
		return nil, fmt.Errorf("reading the attached %s filter's set: %w", whenName(when), err)
	}
	if s.ProgId == 0 || ebpf.ProgramID(s.ProgId) != info.Program {
		return nil, nil
	}
	var nrs []int64
	for nr := range int64(sysTableLen) {
		if s.Nrs[nr/64]&(1<<(nr%64)) != 0 {
			nrs = append(nrs, nr)
		}
	}
	return &sysFilter{nrs: nrs}, nil
}

// setKey is a direction's key in attached_sets.
func setKey(when uint8) uint32 {
	if when == OnExit {
		return 1
	}
	return 0
}

// programID is the kernel's id of a loaded program.
func programID(p *ebpf.Program) (ebpf.ProgramID, error) {
	info, err := p.Info()
	if err != nil {
		return 0, fmt.Errorf("reading a program's id: %w", err)
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel gives no program ids")
	}
	return id, nil
}

// FilterErr is why a direction of the dispatcher went without its filter
// at the last swap, or without its attached filter since it was
// attached, if one did.
func (d *Dispatcher) FilterErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	errs := []error{d.filterErr}
	for _, when := range []uint8{OnEnter, OnExit} {
		if f := d.attached[when]; f != nil {
			errs = append(errs, f.err)
		}
	}
	return errors.Join(errs...)
}

// chain is the prog array of one direction.
func (d *Dispatcher) chain(when uint8) *ebpf.Map {
	if when == OnExit {
		return d.objs.SysExitChain
	}
	return d.objs.SysEnterChain
}

// newFilter loads a filter of one direction for nrs: a 64-bit call of a
// syscall not in nrs returns at once; any other call goes on to the run.
// A 32-bit call always does, as its number is an i386 one. With all, every
// call goes on. An attached filter first jumps to the slot's filter,
// when the slot has one.
func (d *Dispatcher) newFilter(when uint8, nrs []int64, all, attached bool) (*ebpf.Program, error) {
	const pass, out = "pass", "out"
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	name := "filt_"
	if attached {
		name = "disp_"
		// a jump the kernel patches: it falls through while the slot is
		// empty
		insns = append(insns,
			asm.LoadMapPtr(asm.R2, d.chain(when).FD()),
			asm.Mov.Imm(asm.R3, int32(slotFilter)),
			asm.FnTailCall.Call())
	}
	if all {
		name = "pass_"
	} else {
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
			asm.Return())
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(pass),
		asm.LoadMapPtr(asm.R2, d.chain(when).FD()),
		asm.Mov.Imm(asm.R3, int32(slotRun)),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         name + whenName(when),
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

// closeFilters closes the filters' files. The chains and links keep
// running them while they exist (pinned: the agent exits keeping its
// sensors). d.mu is held.
func (d *Dispatcher) closeFilters() error {
	var errs []error
	for when, f := range d.filters {
		errs = append(errs, f.prog.Close())
		delete(d.filters, when)
	}
	for when, f := range d.attached {
		if f.prog != nil {
			errs = append(errs, f.prog.Close())
		}
		delete(d.attached, when)
	}
	return errors.Join(errs...)
}
