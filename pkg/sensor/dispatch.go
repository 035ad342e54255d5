package sensor

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/bpf"
)

// Limits of the syscall dispatcher (bpf/dispatch.c).
const (
	dispatchSlots   = int(bpf.DispatchDispatchLimitDL_HOOK_SLOTS)   // hooks loaded at once
	dispatchStrings = math.MaxUint16                                // match slots (16 bits): filter entries matching strings
	maxPairs        = uint16(bpf.DispatchDispatchLimitDL_MAX_PAIRS) // hook readings of one syscall's entry or exit
	whenShift       = uint32(bpf.DispatchDispatchLimitDL_WHEN_SHIFT)
	gsMax           = uint32(bpf.HookGenStatGS_MAX)      // counters per hook
	lsMax           = uint32(bpf.DispatchListStatLS_MAX) // counters per syscall list
)

// Dispatcher owns the syscall dispatcher: the programs of bpf/dispatch.c
// (sys_enter's and sys_exit's, and io_uring's that keep the verdict cache
// honest), verified and attached once, and the maps through which they
// serve every syscall-mapped hook of every policy. Adding or removing a
// hook writes map entries only. It is safe for concurrent use.
type Dispatcher struct {
	mu    sync.Mutex
	objs  bpf.DispatchObjects
	links map[string]link.Link // by raw tracepoint
	// uring are the io_uring tracepoints the programs that bump the
	// verdict cache's generation at io_uring renames and deletions attach
	// to, by program; nil when the kernel has no such tracepoints
	uring  map[string]string
	pinDir string
	// execCreds says the dispatcher reads the base sensor's exec records
	// (Options.ExecCreds)
	execCreds bool
	// grace: a hook's entries are deleted only when no call can still be
	// reading them
	grace *grace

	lists  map[uint32][]*DataHook // sys_lists key → hooks, in load order
	tables *hookTables
	// staged are the hooks whose entries this run wrote, listed or not
	staged map[*DataHook]bool
	// adopted are the previous run's hooks, while an adopted dispatcher
	// still serves them (AdoptDispatcher, ReleaseAdopted)
	adopted []*DataHook
	closed  bool

	// filters are the filters in the directions' chain slots, attached
	// the ones this run attached (sysfilter.go: an adopted direction's is
	// not known), all loaded with kernelTypes and layout
	filters     map[uint8]*sysFilter
	attached    map[uint8]*sysFilter
	kernelTypes *btf.Spec
	layout      filterLayout
	filterErr   error
}

// DataHook is a hook the dispatcher serves: its configuration, match
// strings and syscall list entries.
type DataHook struct {
	d    *Dispatcher
	spec HookSpec
	// e are its entries in the dispatcher's maps; nil once removed
	e       *hookEntries
	cache   bool
	listing // in the syscall lists (Swap)
	// scope is the hook's cgroups when it is scoped, else nil
	scope *cgroupScope
	pin   pinMark
}

// NewDispatcher loads the dispatcher's programs, whose records go to
// events, and pins its maps and links under pinDir when it is not empty
// (the --keep-sensors-on-exit path). Nothing is attached before a hook
// needs it.
func NewDispatcher(events *ebpf.Map, opts Options, pinDir string) (*Dispatcher, error) {
	d, spec, err := newDispatcher(opts, pinDir)
	if err != nil {
		return nil, err
	}
	replace := map[string]*ebpf.Map{"events": events}
	if opts.ExecCreds != nil {
		replace["exec_creds"] = opts.ExecCreds
		d.execCreds = true
	} else {
		// nothing reads the object's own map: Stage refuses the hooks
		// that would
		spec.Maps["exec_creds"].MaxEntries = 1
	}
	for _, name := range []string{bpf.DispatchProgUringSubmit, bpf.DispatchProgUringComplete} {
		// a kernel without io_uring renames nothing through it: its
		// programs are loaded for a tracepoint every kernel has (their
		// raw reads of the context fit it) and never attached
		spec.Programs[name].AttachTo = cmp.Or(d.uring[name], whenName(OnEnter))
	}
	err = spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: opts.KernelTypes},
		MapReplacements: replace,
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading the syscall dispatcher: %+v", ve)
		}
		return nil, fmt.Errorf("loading the syscall dispatcher: %w", err)
	}
	for when, run := range map[uint8]*ebpf.Program{OnEnter: d.objs.RunSysEnter, OnExit: d.objs.RunSysExit} {
		if err := d.chain(when).Put(slotRun, run); err != nil {
			d.Close()
			return nil, fmt.Errorf("the syscall dispatcher's %s chain: %w", whenName(when), err)
		}
	}
	d.tables = newHookTables("the dispatcher", opts.RunTag, d.objs.Confs, d.objs.Strings, d.objs.HookCgroups, d.objs.Stats, dispatchSlots)
	if d.grace, err = newGrace(); err != nil {
		d.Close()
		return nil, fmt.Errorf("the syscall dispatcher: %w", err)
	}
	if err := d.pin(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// newDispatcher reads the dispatcher's object, and what its filters read
// from the kernel's BTF: what loading a dispatcher and adopting one share.
func newDispatcher(opts Options, pinDir string) (*Dispatcher, *ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadDispatch()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the dispatcher object: %w", err)
	}
	d := &Dispatcher{links: map[string]link.Link{}, pinDir: pinDir, lists: map[uint32][]*DataHook{},
		staged: map[*DataHook]bool{}, filters: map[uint8]*sysFilter{}, attached: map[uint8]*sysFilter{},
		kernelTypes: opts.KernelTypes}
	kernel := opts.KernelTypes
	if kernel == nil {
		if kernel, err = btf.LoadKernelSpec(); err != nil {
			return nil, nil, fmt.Errorf("the syscall dispatcher: %w", err)
		}
	}
	if d.layout, err = newFilterLayout(kernel, spec.Types); err != nil {
		return nil, nil, fmt.Errorf("the syscall dispatcher: %w", err)
	}
	d.uring = uringTracepoints(kernel)
	return d, spec, nil
}

// pin pins the dispatcher's maps and programs under d.pinDir, when it is
// set: the chains too, as a prog array whose last file is closed is
// emptied, and the attached programs would then run nothing. The next
// run adopts them (AdoptDispatcher): the programs' names carry the
// object's digest, so that only an agent with the same object finds them.
func (d *Dispatcher) pin() error {
	if d.pinDir == "" {
		return nil
	}
	maps, progs := objectFields(&d.objs)
	pinned := map[string]*ebpf.Map{}
	for name, m := range maps {
		// the base sensor's, pinned with it
		if name != "events" && name != "exec_creds" {
			pinned[name] = *m
		}
	}
	if err := pinAll(d.pinDir, nil, pinned); err != nil {
		return err
	}
	for name, p := range progs {
		path := filepath.Join(d.pinDir, progPin(name))
		if err := (*p).Pin(path); err != nil {
			return fmt.Errorf("pinning program %s: %w", path, err)
		}
	}
	return nil
}

// progPin is the name a dispatcher program is pinned under.
func progPin(name string) string { return name + "-" + bpf.DispatchDigest() }

// Add makes the dispatcher serve a hook. On error nothing of it stays.
func (d *Dispatcher) Add(spec HookSpec) (*DataHook, error) {
	h, err := d.Stage(spec)
	if err != nil {
		return nil, err
	}
	if err := d.Swap([]*DataHook{h}, nil); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Stage writes a hook's configuration and match strings and attaches the
// io_uring programs, but puts it in no syscall list: no call runs it
// before Swap, which attaches a direction's filter with its first hooks.
// On error nothing of it stays.
func (d *Dispatcher) Stage(spec HookSpec) (*DataHook, error) {
	if len(spec.Syscalls) == 0 {
		return nil, errors.New("hook has no syscall to attach to")
	}
	if !d.execCreds && UsesExecCreds(spec) {
		return nil, errNoExecCreds
	}
	for nr, sc := range spec.Syscalls {
		if nr >= sysTableLen || len(sc.Variants) == 0 || len(sc.Variants) > 2 || sc.Flags&(OnEnter|OnExit) == 0 {
			return nil, fmt.Errorf("syscall %d: bad table entry", nr)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("the syscall dispatcher is closed")
	}
	e, err := d.tables.add(spec)
	if err != nil {
		return nil, err
	}
	h := &DataHook{d: d, spec: spec, e: e, cache: cacheable(spec), scope: e.scope}
	if err := d.attachUring(); err != nil {
		d.tables.remove(e)
		return nil, err
	}
	d.staged[h] = true
	return h, nil
}

// Swap puts staged hooks into their syscall lists and takes old ones
// out, rewriting each list they touch once: a call sees the old hooks or
// the new ones, never both or half of each (a new version of a policy
// replaces the old one at one instant, per syscall). On error the lists
// are as they were. The old hooks' entries stay until they are closed.
func (d *Dispatcher) Swap(add, remove []*DataHook) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("the syscall dispatcher is closed")
	}
	return d.swap(add, remove)
}

// swap is Swap with d.mu held.
func (d *Dispatcher) swap(add, remove []*DataHook) error {
	if len(d.adopted) > 0 {
		add, remove = d.reconcile(add, remove)
	}
	next := map[uint32][]*DataHook{}
	for _, h := range remove {
		if !h.listed {
			continue
		}
		for _, key := range h.listKeys() {
			if _, ok := next[key]; !ok {
				next[key] = slices.Clone(d.lists[key])
			}
			next[key] = slices.DeleteFunc(next[key], func(x *DataHook) bool { return x == h })
		}
	}
	for _, h := range add {
		for _, key := range h.listKeys() {
			if _, ok := next[key]; !ok {
				next[key] = slices.Clone(d.lists[key])
			}
			next[key] = append(next[key], h)
		}
	}
	after := maps.Clone(d.lists)
	for key, hooks := range next {
		if len(hooks) == 0 {
			delete(after, key)
		} else {
			after[key] = hooks
		}
	}
	nrs := d.filterNrs(after)
	// a direction's first hooks: its filter is attached before their
	// lists are written, of the syscalls they will be listed for
	for key := range after {
		when := uint8(key >> whenShift)
		if d.links[whenName(when)] == nil {
			if err := d.attachFilter(when, nrs[when]); err != nil {
				return err
			}
		}
	}
	if err := d.unfilter(nrs); err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(next))
	for i, key := range keys {
		if err := d.writeList(key, next[key]); err != nil {
			for _, k := range keys[:i] {
				d.writeList(k, d.lists[k]) //nolint:errcheck // best effort: back to what was there
			}
			d.refilter(d.filterNrs(d.lists))
			return err
		}
	}
	// at once: until the generation moves, a file the old lists passed
	// over is still passed over by the new ones, whatever a new hook says
	d.bumpGeneration()
	// every call runs the new lists from here (the filter put back below
	// only skips calls no list maps)
	now := Ktime()
	d.lists = after
	d.refilter(nrs)
	for _, h := range remove {
		h.unlist()
	}
	for _, h := range add {
		h.list(now)
	}
	return nil
}

// listKeys are the sys_lists keys the hook is in, sorted.
func (h *DataHook) listKeys() []uint32 {
	var keys []uint32
	for nr, sc := range h.spec.Syscalls {
		for _, w := range []uint8{OnEnter, OnExit} {
			if sc.Flags&w != 0 {
				keys = append(keys, nr|uint32(w)<<whenShift)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// writeList writes the list of syscall key as hooks make it, in one map
// update (a call reads the old list or the new one), or deletes it when
// no hook is left.
func (d *Dispatcher) writeList(key uint32, hooks []*DataHook) error {
	nr := key & (1<<whenShift - 1)
	mapped := nr*2 + key>>whenShift>>1 // sys_mapped: nr * 2 + (exit ? 1 : 0)
	if len(hooks) == 0 {
		// the head first: a call that still sees it finds no list
		if err := d.objs.SysMapped.Put(mapped, bpf.DispatchSysHead{}); err != nil {
			return fmt.Errorf("clearing syscall %d: %w", nr, err)
		}
		if err := d.objs.SysLists.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("deleting syscall list %d: %w", nr, err)
		}
		return nil
	}
	var l bpf.DispatchSysList
	first := hooks[0].spec.Syscalls[nr].Variants
	cacheable := true
	var prev *DataHook // the hook of the pair before
	// the prefilter's string slots: those of every hook, when every pair
	// reads the call as the one before it
	pre := uint8(1)<<MaxStringArgs - 1
	for _, h := range hooks {
		sc := h.spec.Syscalls[nr]
		if !h.cache || !slices.Equal(sc.Variants, first) {
			cacheable = false
		}
		pre &= h.e.pre
		for vi, v := range sc.Variants {
			if l.N == maxPairs {
				return fmt.Errorf("syscall %d: more than %d hook readings", nr, maxPairs)
			}
			p := bpf.DispatchSysPair{Slot: h.e.slot, Flags: sc.Flags &^ (OnEnter | OnExit), Vi: uint8(vi), FdSrc: v.FD, Mask: v.Mask}
			if q := l.P[max(l.N, 1)-1]; l.N > 0 && q.FdSrc == p.FdSrc && q.Mask == p.Mask && sameArgs(&h.e.conf, &prev.e.conf) {
				// policies of one shape read the call once
				p.Flags |= uint8(bpf.DispatchSysFlagSE_SAME_ARGS)
			} else if l.N > 0 {
				pre = 0
			}
			l.P[l.N], prev = p, h
			l.N++
		}
	}
	l.Pre = listPrefilter(pre)
	l.H.Flags = uint8(bpf.DispatchSysHeadFlagSH_MAPPED)
	if cacheable {
		l.H.Flags |= uint8(bpf.DispatchSysHeadFlagSH_CACHEABLE)
		l.H.Nv = uint8(len(first))
		for i, v := range first {
			l.H.V[i].FdSrc, l.H.V[i].Mask = v.FD, v.Mask
		}
	}
	// the list before its head: a call that reads the new head finds the
	// new list, and one that reads the old head then the new list sees
	// that they differ (dispatch.c)
	if err := d.objs.SysLists.Put(key, &l); err != nil {
		return fmt.Errorf("writing syscall list %d: %w", nr, err)
	}
	if err := d.objs.SysMapped.Put(mapped, l.H); err != nil {
		return fmt.Errorf("writing syscall %d's head: %w", nr, err)
	}
	return nil
}

// bumpGeneration invalidates the verdict cache: files the old lists'
// hooks passed over may match a new one.
func (d *Dispatcher) bumpGeneration() {
	var g uint64
	if err := d.objs.Generation.Lookup(uint32(0), &g); err == nil {
		d.objs.Generation.Put(uint32(0), g+1) //nolint:errcheck // an array entry always exists
	}
}

// uringTracepoints finds the tracepoints the io_uring programs attach
// to, where the kernel passes the request as they read it
// (bpf/dispatch.c): older kernels name io_uring_submit_req
// io_uring_submit_sqe (6.1 does), and older still passed other arguments.
// nil when the kernel lacks either.
func uringTracepoints(kernel *btf.Spec) map[string]string {
	// the request's argument: after the tracepoint's own data, the
	// request (struct io_kiocb *) first, or a pointer second
	passes := func(tp string, arg int, isReq func(btf.Type) bool) bool {
		var td *btf.Typedef
		if kernel.TypeByName("btf_trace_"+tp, &td) != nil {
			return false
		}
		ptr, ok := td.Type.(*btf.Pointer)
		if !ok {
			return false
		}
		fp, ok := ptr.Target.(*btf.FuncProto)
		if !ok || len(fp.Params) <= arg+1 {
			return false
		}
		p, ok := fp.Params[arg+1].Type.(*btf.Pointer)
		return ok && isReq(p.Target)
	}
	kiocb := func(t btf.Type) bool { s, ok := t.(*btf.Struct); return ok && s.Name == "io_kiocb" }
	tps := map[string]string{}
	for _, tp := range []string{"io_uring_submit_req", "io_uring_submit_sqe"} {
		if passes(tp, 0, kiocb) {
			tps[bpf.DispatchProgUringSubmit] = tp
			break
		}
	}
	// a void * in 6.1 and 6.18 (older kernels passed the user data there)
	if passes("io_uring_complete", 1, func(t btf.Type) bool { _, ok := t.(*btf.Void); return ok || kiocb(t) }) {
		tps[bpf.DispatchProgUringComplete] = "io_uring_complete"
	}
	if len(tps) < 2 {
		return nil
	}
	return tps
}

// attachUring attaches the io_uring programs, with the first hook, once:
// a verdict the cache keeps must not outlive a rename it did not see.
func (d *Dispatcher) attachUring() error {
	for name, tp := range d.uring {
		if d.links[tp] != nil {
			continue
		}
		if err := d.attachLink(tp, d.uringProgram(name)); err != nil {
			return err
		}
	}
	return nil
}

// attachLink attaches prog to raw tracepoint tp and pins the link.
func (d *Dispatcher) attachLink(tp string, prog *ebpf.Program) error {
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return fmt.Errorf("attaching tp_btf/%s: %w", tp, err)
	}
	if err := d.pinLink(tp, l); err != nil {
		l.Close()
		return err
	}
	d.links[tp] = l
	return nil
}

// linkTracepoints are the raw tracepoints a direction's links are on:
// its own, and io_uring's.
func (d *Dispatcher) linkTracepoints(when uint8) []string {
	tps := []string{whenName(when)}
	for _, tp := range d.uring {
		tps = append(tps, tp)
	}
	return tps
}

// uringProgram is the io_uring program of its name in the object.
func (d *Dispatcher) uringProgram(name string) *ebpf.Program {
	if name == bpf.DispatchProgUringSubmit {
		return d.objs.UringSubmit
	}
	return d.objs.UringComplete
}

// pinLink pins the link of a raw tracepoint under d.pinDir, when it is
// set.
func (d *Dispatcher) pinLink(tp string, l link.Link) error {
	if d.pinDir == "" {
		return nil
	}
	if err := l.Pin(filepath.Join(d.pinDir, linkPin(tp))); err != nil {
		return fmt.Errorf("pinning the dispatcher's %s link: %w", tp, err)
	}
	return nil
}

// linkPin is the name the link of a raw tracepoint is pinned under.
func linkPin(tp string) string { return "link_" + tp }

// program is the object's program of one direction, which passes every
// call: attached where the direction's filter cannot be loaded.
func (d *Dispatcher) program(when uint8) *ebpf.Program {
	if when == OnExit {
		return d.objs.GenSysExit
	}
	return d.objs.GenSysEnter
}

// close takes the hook out of every list it is still in, then deletes
// its entries once no call can still read them. d.mu is held.
func (h *DataHook) close() error {
	d := h.d
	if err := d.swap(nil, []*DataHook{h}); err != nil {
		// still listed: its entries stay, and closing is tried again
		return err
	}
	if h.e == nil {
		return nil
	}
	e := h.e
	h.e = nil
	delete(d.staged, h)
	if err := d.grace.wait(); err != nil {
		d.tables.free(e)
		return err
	}
	return d.tables.remove(e)
}

// Stats reads the hook's counters. Calls and Cached count the calls of
// the syscalls it maps, whichever hooks they ran, and so do Passed.
func (h *DataHook) Stats() (GenericStats, error) {
	d := h.d
	e := h.e
	if e == nil {
		return GenericStats{}, errors.New("the hook is closed")
	}
	s, err := readGenericStats(d.objs.Stats, e.slot*gsMax)
	if err != nil {
		return s, err
	}
	s.Calls, s.Cached = 0, 0
	for _, key := range h.listKeys() {
		idx := ((key&(1<<whenShift-1))*2 + key>>whenShift>>1) * lsMax // as sys_mapped's, times LS_MAX
		calls, err := sumPerCPU(d.objs.ListStats, idx)
		if err != nil {
			return s, fmt.Errorf("reading syscall counters: %w", err)
		}
		cached, err := sumPerCPU(d.objs.ListStats, idx+uint32(bpf.DispatchListStatLS_CACHED))
		if err != nil {
			return s, fmt.Errorf("reading syscall counters: %w", err)
		}
		passed, err := sumPerCPU(d.objs.ListStats, idx+uint32(bpf.DispatchListStatLS_PASSED))
		if err != nil {
			return s, fmt.Errorf("reading syscall counters: %w", err)
		}
		s.Calls += calls
		s.Cached += cached
		s.Passed += passed
	}
	// what the hook adds: its configuration, its list readings and its
	// match strings
	var pairs int
	for _, sc := range h.spec.Syscalls {
		pairs += len(sc.Variants)
	}
	s.MemoryBytes = uint64(e.memory() + pairs*sizeOf(bpf.DispatchSysPair{}))
	return s, nil
}

// ListedSince is when the hook began to run on calls (Ktime), 0 while it
// is in no list.
func (h *DataHook) ListedSince() uint64 {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return h.listedSince()
}

// Pin marks the hook as pinned under dir: until dir is removed, closing
// the hook leaves it in the dispatcher, which is pinned too.
func (h *DataHook) Pin(dir string) error {
	m, err := markPinned(dir)
	h.pin = m
	return err
}

// Close removes the hook from the dispatcher, unless it is pinned and its
// pin directory still exists (the agent exits and keeps its sensors).
func (h *DataHook) Close() error {
	if h.pin.held() {
		return nil
	}
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if h.d.closed {
		return nil
	}
	return h.close()
}

// Unpin removes the dispatcher's pins; Close then detaches it.
func (d *Dispatcher) Unpin() error {
	if d.pinDir == "" {
		return nil
	}
	return os.RemoveAll(d.pinDir)
}

// Close releases the dispatcher's handles. Unless it is pinned, that
// detaches it and every hook it serves.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	var errs []error
	if len(d.adopted) > 0 {
		// a start that failed: the previous run's hooks go back
		errs = append(errs, d.giveBack())
	}
	errs = append(errs, d.closeFilters())
	for tp, l := range d.links {
		errs = append(errs, l.Close())
		delete(d.links, tp)
	}
	errs = append(errs, d.objs.Close())
	errs = append(errs, d.grace.Close())
	return errors.Join(errs...)
}

func sizeOf(v any) int { return binary.Size(v) }
