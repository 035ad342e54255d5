package sensor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// AdoptDispatcher takes over the syscall dispatcher a previous run pinned
// in dir when it runs this binary's object and writes to events (the
// adopted base sensor's ring buffer): its programs stay attached and are
// not verified again, and the previous run's hooks keep enforcing from
// its maps until this run's take over. A hook added with the stable id of
// one of them replaces it in the same swap; ReleaseAdopted drops the
// others once this run's policies enforce, and Close puts them back after
// a start that failed. The pins in dir stay as they are; the dispatcher is
// pinned under pinDir as NewDispatcher pins its own. The error wraps
// ErrNotAdopted when dir holds no dispatcher this run can adopt.
func AdoptDispatcher(dir string, events *ebpf.Map, opts Options, pinDir string) (_ *Dispatcher, err error) {
	if opts.ExecCreds == nil {
		return nil, fmt.Errorf("%w: no exec records to share", ErrNotAdopted)
	}
	d, _, err := newDispatcher(opts, pinDir)
	if err != nil {
		return nil, err
	}
	d.execCreds = true
	defer func() {
		if err != nil {
			d.adopted = nil // nothing of this run was written
			d.Close()
			d.Unpin()
		}
	}()
	if d.grace, err = newGrace(); err != nil {
		return nil, fmt.Errorf("the syscall dispatcher: %w", err)
	}
	maps, progs := objectFields(&d.objs)
	for name, dst := range progs {
		if *dst, err = openPinnedProgram(filepath.Join(dir, progPin(name))); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
		}
	}
	for name, dst := range maps {
		switch name {
		case "events":
			*dst, err = events.Clone()
		case "exec_creds":
			*dst, err = opts.ExecCreds.Clone()
		default:
			*dst, err = openPinnedMap(filepath.Join(dir, name))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
		}
	}
	// a dispatcher that writes to another ring buffer is the previous
	// base sensor's
	if err := sharesMaps([]*ebpf.Program{d.objs.GenSysEnter, d.objs.GenSysExit, d.objs.RunSysEnter, d.objs.RunSysExit},
		map[string]*ebpf.Map{"events": events, "exec_creds": opts.ExecCreds}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
	}
	for _, when := range []uint8{OnEnter, OnExit} {
		for _, tp := range d.linkTracepoints(when) {
			path := filepath.Join(dir, linkPin(tp))
			if d.links[tp] != nil {
				continue // io_uring's: both directions have them
			}
			if _, err := os.Stat(path); err != nil {
				continue // not attached: no hook ran there
			}
			if d.links[tp], err = openPinnedLink(path); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
			}
		}
		if d.links[whenName(when)] == nil {
			continue
		}
		// what it runs: a filter of a set attached_sets names decides
		// alone while the slot is empty
		if a, err := d.adoptAttached(when); err != nil {
			return nil, fmt.Errorf("the syscall dispatcher: %w", err)
		} else if a != nil {
			d.attached[when] = a
		}
		// the filter the previous run left in the slot: of a set this run
		// does not know, so the first swap replaces it (unfilter), then
		// empties the slot or writes one of this run's there (refilter)
		var f *ebpf.Program
		if err := d.chain(when).Lookup(slotFilter, &f); err == nil && f != nil {
			d.filters[when] = &sysFilter{prog: f}
		}
	}
	d.tables = newHookTables("the dispatcher", opts.RunTag, d.objs.Confs, d.objs.Strings, d.objs.HookCgroups, d.objs.Stats, dispatchSlots)
	if err := d.adoptHooks(); err != nil {
		return nil, err
	}
	if err := d.pin(); err != nil {
		return nil, err
	}
	for tp, l := range d.links {
		if err := d.pinLink(tp, l); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// adoptHooks makes the previous run's hooks from the dispatcher's maps:
// their entries (hookTables.adopt) and, from the syscall lists, where
// each is listed and how it reads each call, as writeList wrote it.
func (d *Dispatcher) adoptHooks() error {
	entries, err := d.tables.adopt()
	if err != nil {
		return err
	}
	bySlot := map[uint32]*DataHook{}
	for slot, e := range entries {
		h := &DataHook{d: d, e: e, cache: e.conf.Cacheable != 0, scope: e.scope,
			spec: HookSpec{ID: e.conf.HookId, Key: e.conf.Key, Syscalls: map[uint32]Syscall{}, Scoped: e.conf.Scoped != 0}}
		bySlot[slot] = h
		d.adopted = append(d.adopted, h)
	}
	var key uint32
	var l bpf.DispatchSysList
	it := d.objs.SysLists.Iterate()
	for it.Next(&key, &l) {
		nr, when := key&(1<<whenShift-1), uint8(key>>whenShift)
		var hooks []*DataHook
		for _, p := range l.P[:min(int(l.N), len(l.P))] {
			h := bySlot[p.Slot]
			if h == nil {
				return fmt.Errorf("syscall list %d names hook slot %d, which has no configuration", nr, p.Slot)
			}
			sc := h.spec.Syscalls[nr]
			sc.Flags |= when | p.Flags&^uint8(bpf.DispatchSysFlagSE_SAME_ARGS)
			for len(sc.Variants) <= int(p.Vi) {
				sc.Variants = append(sc.Variants, Variant{})
			}
			sc.Variants[p.Vi] = Variant{FD: p.FdSrc, Mask: p.Mask}
			h.spec.Syscalls[nr] = sc
			if len(hooks) == 0 || hooks[len(hooks)-1] != h {
				hooks = append(hooks, h)
			}
		}
		if len(hooks) > 0 {
			d.lists[key] = hooks
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading the syscall lists: %w", err)
	}
	now := Ktime()
	for _, hooks := range d.lists {
		for _, h := range hooks {
			h.list(now)
		}
	}
	return nil
}

// sharesMaps checks that the programs use, of the maps named in shared,
// those very maps (the base sensor's ring buffer, say) and no others.
func sharesMaps(progs []*ebpf.Program, shared map[string]*ebpf.Map) error {
	want := map[string]ebpf.MapID{}
	for name, m := range shared {
		info, err := m.Info()
		if err != nil {
			return fmt.Errorf("reading map %s: %w", name, err)
		}
		want[name], _ = info.ID()
	}
	// each map once: the programs of an object share most of theirs
	used := map[ebpf.MapID]bool{}
	for _, p := range progs {
		info, err := p.Info()
		if err != nil {
			return fmt.Errorf("reading a program's maps: %w", err)
		}
		ids, _ := info.MapIDs()
		for _, id := range ids {
			used[id] = true
		}
	}
	for id := range used {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return fmt.Errorf("opening map %d: %w", id, err)
		}
		mi, err := m.Info()
		m.Close()
		if err != nil {
			return fmt.Errorf("reading map %d: %w", id, err)
		}
		if w, ok := want[mi.Name]; ok && w != id {
			return fmt.Errorf("the programs use another %s map than this run's", mi.Name)
		}
	}
	return nil
}

// reconcile completes a swap while the previous run's hooks are adopted:
// a hook added takes over from the adopted one of its key in the same
// swap, and an adopted hook comes back when its successor goes with none
// taking over, so that the previous run's policies enforce until this
// run's replace them. d.mu is held.
func (d *Dispatcher) reconcile(add, remove []*DataHook) ([]*DataHook, []*DataHook) {
	return reconcile(d.adopted, add, remove, func(h *DataHook) (uint64, bool) { return h.spec.Key, h.listed })
}

// reconcile is Dispatcher.reconcile for either owner's hooks, whose key
// (HookSpec.Key) and whether they are listed state tells.
func reconcile[H comparable](adopted, add, remove []H, state func(H) (key uint64, listed bool)) ([]H, []H) {
	added := map[uint64]bool{}
	for _, h := range add {
		k, _ := state(h)
		added[k] = true
	}
	gone := map[uint64]bool{}
	for _, h := range remove {
		if k, listed := state(h); listed && !added[k] {
			gone[k] = true
		}
	}
	for _, o := range adopted {
		switch k, listed := state(o); {
		case listed && added[k]:
			remove = append(remove, o)
		case !listed && gone[k]:
			add = append(add, o)
		}
	}
	return add, remove
}

// ReleaseAdopted drops the previous run's hooks an adopted dispatcher
// still serves, once this run's policies enforce: they leave the lists in
// one swap, and their entries go once no call can read them.
func (d *Dispatcher) ReleaseAdopted() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.adopted
	if len(old) == 0 {
		return nil
	}
	// first: reconcile must not bring them back
	d.adopted = nil
	if err := d.swap(nil, old); err != nil {
		d.adopted = old
		return fmt.Errorf("taking the previous run's hooks out of the syscall lists: %w", err)
	}
	return d.removeEntries(old)
}

// giveBack puts the dispatcher back as the previous run left it, after a
// start that adopted it failed: this run's hooks leave the lists, which
// brings back the adopted ones they replaced (reconcile), and their
// entries go. d.mu is held.
func (d *Dispatcher) giveBack() error {
	var mine []*DataHook
	for h := range d.staged {
		mine = append(mine, h)
	}
	if err := d.swap(nil, mine); err != nil {
		return fmt.Errorf("putting the previous run's hooks back: %w", err)
	}
	d.adopted = nil
	return d.removeEntries(mine)
}

// removeEntries deletes unlisted hooks' entries once no call can read
// them. d.mu is held.
func (d *Dispatcher) removeEntries(hooks []*DataHook) error {
	if err := d.grace.wait(); err != nil {
		return err
	}
	var errs []error
	for _, h := range hooks {
		if h.e != nil {
			errs = append(errs, d.tables.remove(h.e))
			h.e = nil
		}
		delete(d.staged, h)
	}
	return errors.Join(errs...)
}

// Adopt makes Stage adopt the objects a previous run pinned in dir (its
// Points' directory) before loading any: an object of the same attach
// point and layout, of this binary's hook.c and writing to this run's
// shared maps, is taken over with its programs attached and its hooks
// enforcing until this run's take over, as AdoptDispatcher does. Call it
// before staging anything.
func (ps *Points) Adopt(dir string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.adoptDir = dir
}

// adoptPoint takes over the object the previous run pinned for key (and
// for the hook, when the object is one hook's own), if there is one it
// can; ps.mu is held. Why one is not adopted is kept in notAdopted.
func (ps *Points) adoptPoint(key string, spec ProgHookSpec, progs []string, own bool) *point {
	dir := filepath.Join(ps.adoptDir, pointName(key))
	if own {
		// the first not taken yet: a run that died during a reload may
		// have left two
		dirs, _ := filepath.Glob(filepath.Join(ps.adoptDir, ownPrefix(key, spec.Key)+"*"))
		dirs = slices.DeleteFunc(dirs, func(d string) bool { return ps.taken[d] })
		if len(dirs) == 0 {
			return nil
		}
		dir = dirs[0]
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	p, err := ps.openPoint(dir, key, spec, progs, own)
	if err != nil {
		ps.notAdopted = append(ps.notAdopted, fmt.Errorf("the %s object pinned at %s: %w", spec.Symbol, dir, err))
		return nil
	}
	ps.taken[dir] = true
	ps.points[p] = true
	if !own {
		ps.byKey[key] = p
	}
	return p
}

// openPoint opens the object pinned in dir and its hooks; ps.mu is held.
// On error nothing of it is held, and nothing in dir changed.
func (ps *Points) openPoint(dir, key string, spec ProgHookSpec, progs []string, own bool) (_ *point, err error) {
	shared := map[string]*ebpf.Map{"events": ps.events, "exec_creds": ps.opts.ExecCreds, "socktrack": ps.opts.SockTrack}
	p := &point{key: key, spec: spec, progs: progs, adopted: true, own: own,
		coll: &ebpf.Collection{Programs: map[string]*ebpf.Program{}, Maps: map[string]*ebpf.Map{}}}
	defer func() {
		if err != nil {
			for _, l := range p.links {
				l.Close()
			}
			p.coll.Close()
		}
	}()
	var list []*ebpf.Program
	for _, name := range progs {
		if p.coll.Programs[name], err = openPinnedProgram(filepath.Join(dir, "prog_"+name)); err != nil {
			return nil, err
		}
		list = append(list, p.coll.Programs[name])
	}
	names, _ := objectFields(&bpf.HookObjects{})
	for name := range names {
		var m *ebpf.Map
		if sharedMap(name) {
			if shared[name] == nil {
				return nil, fmt.Errorf("no %s map to share", name)
			}
			m, err = shared[name].Clone()
		} else {
			m, err = openPinnedMap(filepath.Join(dir, name))
		}
		if err != nil {
			return nil, err
		}
		p.coll.Maps[name] = m
	}
	if err := sharesMaps(list, shared); err != nil {
		return nil, err
	}
	for i := range progs {
		l, err := openPinnedLink(filepath.Join(dir, fmt.Sprintf("link%d", i)))
		if err != nil {
			return nil, err
		}
		p.links = append(p.links, l)
	}
	p.tables = newHookTables("the "+spec.Symbol+" object", ps.opts.RunTag, p.coll.Maps["conf"], p.coll.Maps["strings"], p.coll.Maps["hook_cgroups"], p.coll.Maps["stats"], pointSlots)
	entries, err := p.tables.adopt()
	if err != nil {
		return nil, err
	}
	bySlot := map[uint32]*ProgHook{}
	var hooks []*ProgHook
	for slot, e := range entries {
		h := &ProgHook{ps: ps, p: p, e: e, scope: e.scope}
		bySlot[slot] = h
		hooks = append(hooks, h)
	}
	var l bpf.HookPointList
	if err := p.coll.Maps["hooks"].Lookup(uint32(0), &l); err != nil {
		return nil, fmt.Errorf("reading the hook list: %w", err)
	}
	now := Ktime()
	for _, slot := range l.Slot[:min(int(l.N), len(l.Slot))] {
		h := bySlot[slot&^uint32(bpf.HookPointLimitPL_SLOT_SAME_ARGS)]
		if h == nil {
			return nil, fmt.Errorf("the hook list names slot %d, which has no configuration", slot)
		}
		h.list(now)
		p.listed = append(p.listed, h)
	}
	p.staged = len(hooks)
	p.memory = objectMemory(p.coll)
	if own {
		p.key = "" // no other hook will find it
	}
	if ps.pinDir != "" {
		p.pinDir = filepath.Join(ps.pinDir, ps.pointPin(key, own, spec.Key))
		if err := ps.pin(p); err != nil {
			os.RemoveAll(p.pinDir)
			return nil, err
		}
	}
	ps.adopted = append(ps.adopted, hooks...)
	return p, nil
}

// state is a hook's key and whether calls run it (reconcile).
func (h *ProgHook) state() (uint64, bool) {
	if h.e == nil {
		return 0, false
	}
	return h.e.conf.Key, h.listed
}

// ReleaseAdopted drops the previous run's hooks the adopted objects still
// serve, as Dispatcher.ReleaseAdopted does, and unloads the objects no
// hook of this run uses. It also returns why objects were loaded again
// instead of adopted.
func (ps *Points) ReleaseAdopted() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	errs := ps.notAdopted
	ps.notAdopted, ps.adoptDir = nil, ""
	old := ps.adopted
	if len(old) == 0 {
		return errors.Join(errs...)
	}
	ps.adopted = nil
	if err := ps.swap(nil, old); err != nil {
		ps.adopted = old
		return errors.Join(append(errs, fmt.Errorf("taking the previous run's hooks out of the hook lists: %w", err))...)
	}
	return errors.Join(append(errs, ps.removeEntries(old))...)
}

// giveBack puts the adopted objects back as the previous run left them,
// after a start that failed (Dispatcher.giveBack). ps.mu is held.
func (ps *Points) giveBack() error {
	var mine []*ProgHook
	for h := range ps.staged {
		if h.p.adopted {
			mine = append(mine, h)
		}
	}
	if err := ps.swap(nil, mine); err != nil {
		return fmt.Errorf("putting the previous run's hooks back: %w", err)
	}
	ps.adopted = nil
	return ps.removeEntries(mine)
}

// removeEntries deletes unlisted hooks' entries once no call can read
// them, and unloads the objects left with none. ps.mu is held.
func (ps *Points) removeEntries(hooks []*ProgHook) error {
	if err := ps.grace.wait(); err != nil {
		return err
	}
	var errs []error
	for _, h := range hooks {
		p, e := h.p, h.e
		delete(ps.staged, h)
		if p == nil {
			continue
		}
		h.p, h.e = nil, nil
		errs = append(errs, p.tables.remove(e))
		if p.staged--; p.staged == 0 {
			errs = append(errs, ps.closePoint(p))
		}
	}
	return errors.Join(errs...)
}
