package sensor

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// hookTables are the maps through which one object serves many hooks, in
// the layout bpf/lib/hook.h gives the dispatcher and the attach points'
// objects alike: configurations by hook slot, match strings by match
// slot, scoped hooks' cgroups, counters; the prefilter's union; and which
// slots are taken. Its owner serializes the calls.
type hookTables struct {
	// what names the object in errors
	what string
	// run is the agent run whose hooks these tables add (Options.RunTag):
	// their records carry it
	run                            uint16
	confs, strings, cgroups, stats *ebpf.Map
	slots, strSlots                []bool
	// union counts the hooks holding each prefilter value (prefilter)
	union map[bpf.HookLpmKey]int
}

func newHookTables(what string, run uint16, confs, strings, cgroups, stats *ebpf.Map, slots int) *hookTables {
	t := &hookTables{what: what, run: run, confs: confs, strings: strings, cgroups: cgroups, stats: stats,
		slots: make([]bool, slots), strSlots: make([]bool, dispatchStrings+1), union: map[bpf.HookLpmKey]int{}}
	t.strSlots[0] = true // slot 0: entries without strings
	for s := range MaxStringArgs {
		t.strSlots[unionSlot(s)] = true // the unions'
	}
	return t
}

// hookEntries are one hook's entries in hookTables.
type hookEntries struct {
	slot     uint32
	conf     bpf.HookGenConf
	strSlots []uint16
	keys     []bpf.HookLpmKey
	// pre: the string slots of the hook's prefilter values (bit s for
	// slot s), and those values, in the union
	pre     uint8
	preKeys []bpf.HookLpmKey
	// scope is the hook's cgroups when it is scoped, else nil
	scope *cgroupScope
}

// add writes a hook's configuration and match strings, and zeroes the
// counters a previous hook may have left, in free slots. On error nothing
// of it stays.
func (t *hookTables) add(spec HookSpec) (*hookEntries, error) {
	slot := slices.Index(t.slots, false)
	if slot < 0 {
		return nil, fmt.Errorf("%d hooks are loaded, %s serves at most %d", len(t.slots), t.what, len(t.slots))
	}
	e := &hookEntries{slot: uint32(slot)}
	conf, keys, err := encodeConf(spec, func() (uint16, error) {
		s := slices.Index(t.strSlots, false)
		if s < 0 {
			return 0, fmt.Errorf("%s's %d match slots are all in use", t.what, dispatchStrings)
		}
		t.strSlots[s] = true
		e.strSlots = append(e.strSlots, uint16(s))
		return uint16(s), nil
	})
	t.slots[slot] = true
	if err != nil {
		t.free(e)
		return nil, err
	}
	conf.Slot, conf.Run = uint16(slot), t.run
	e.conf, e.keys = conf, keys
	if spec.Scoped {
		e.scope = newCgroupScope(t.cgroups, e.slot)
	}
	fail := func(err error) (*hookEntries, error) {
		t.remove(e)
		return nil, err
	}
	zeros := make([]uint64, ebpf.MustPossibleCPU())
	for i := range gsMax {
		if err := t.stats.Put(e.slot*gsMax+i, zeros); err != nil {
			return fail(fmt.Errorf("resetting hook counters: %w", err))
		}
	}
	for _, k := range keys {
		if err := t.strings.Put(k, uint8(1)); err != nil {
			return fail(fmt.Errorf("writing match strings: %w", err))
		}
	}
	// in the union from now until the entries are deleted, when no list
	// has the hook any more: the union is then a superset of the listed
	// hooks' values at every instant, and rules out no call one matches
	pre, preKeys := prefilter(&conf, keys)
	for _, k := range preKeys {
		if t.union[k] == 0 {
			if err := t.strings.Put(k, uint8(1)); err != nil {
				return fail(fmt.Errorf("writing the prefilter's strings: %w", err))
			}
		}
		t.union[k]++
		e.preKeys = append(e.preKeys, k)
	}
	e.pre = pre
	if err := t.confs.Put(e.slot, conf); err != nil {
		return fail(fmt.Errorf("writing hook config: %w", err))
	}
	return e, nil
}

// adopt reads back the entries a previous run's hooks have in these maps
// (an adopted object's) and takes their slots: the kernel's maps are the
// record of what is loaded, so nothing else has to outlive a restart. It
// returns them by hook slot.
func (t *hookTables) adopt() (map[uint32]*hookEntries, error) {
	byStrSlot := map[uint16][]bpf.HookLpmKey{}
	var key bpf.HookLpmKey
	var one uint8
	it := t.strings.Iterate()
	for it.Next(&key, &one) {
		byStrSlot[key.Slot] = append(byStrSlot[key.Slot], key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading %s's match strings: %w", t.what, err)
	}
	cgroups := map[uint32][]uint64{}
	var ck bpf.HookCgroupKey
	it = t.cgroups.Iterate()
	for it.Next(&ck, &one) {
		cgroups[ck.Slot] = append(cgroups[ck.Slot], ck.Cgroup)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading %s's hook cgroups: %w", t.what, err)
	}
	out := map[uint32]*hookEntries{}
	var slot uint32
	var conf bpf.HookGenConf
	it = t.confs.Iterate()
	for it.Next(&slot, &conf) {
		if int(slot) >= len(t.slots) || int(conf.Nsel) > len(conf.Sel) {
			return nil, fmt.Errorf("%s holds a hook configuration this agent does not read (slot %d)", t.what, slot)
		}
		e := &hookEntries{slot: slot, conf: conf}
		for _, sel := range conf.Sel[:conf.Nsel] {
			for _, m := range sel.M[:min(int(sel.Nmatch), len(sel.M))] {
				// match slot 0: an entry without strings
				if m.Slot == 0 || slices.Contains(e.strSlots, m.Slot) {
					continue
				}
				e.strSlots = append(e.strSlots, m.Slot)
				e.keys = append(e.keys, byStrSlot[m.Slot]...)
				t.strSlots[m.Slot] = true
			}
		}
		t.slots[slot] = true
		e.pre, e.preKeys = prefilter(&e.conf, e.keys)
		for _, k := range e.preKeys {
			t.union[k]++
		}
		if conf.Scoped != 0 {
			e.scope = newCgroupScope(t.cgroups, slot)
			for _, id := range cgroups[slot] {
				e.scope.set[id] = true
			}
		}
		out[slot] = e
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading %s's hook configurations: %w", t.what, err)
	}
	return out, nil
}

// remove deletes a hook's entries and frees its slots; the caller made
// sure no call can read them any more.
func (t *hookTables) remove(e *hookEntries) error {
	var errs []error
	if err := t.confs.Delete(e.slot); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("deleting hook config: %w", err))
	}
	for _, k := range e.keys {
		if err := t.strings.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("deleting match strings: %w", err))
		}
	}
	if e.scope != nil {
		errs = append(errs, e.scope.replace(nil))
	}
	for _, k := range e.preKeys {
		if t.union[k] > 1 {
			continue
		}
		if err := t.strings.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("deleting the prefilter's strings: %w", err))
		}
	}
	t.free(e)
	return errors.Join(errs...)
}

// free gives a hook's slots back, with no map update: the object is gone,
// or the entries were never written.
func (t *hookTables) free(e *hookEntries) {
	for _, s := range e.strSlots {
		t.strSlots[s] = false
	}
	e.strSlots = nil
	// a value left in the kernel's union is one more the prefilter lets
	// through: harmless, and a hook that brings it back writes it again
	for _, k := range e.preKeys {
		if t.union[k]--; t.union[k] <= 0 {
			delete(t.union, k)
		}
	}
	e.preKeys = nil
	t.slots[e.slot] = false
}

// memory is what the hook's entries take: its configuration and match
// strings.
func (e *hookEntries) memory() int {
	return sizeOf(e.conf) + (len(e.keys)+len(e.preKeys))*(sizeOf(bpf.HookLpmKey{})+1)
}

// unionSlot is the match slot of the prefilter's values for string slot
// s (UNION_SLOT in bpf/lib/hook.h), one no hook gets.
func unionSlot(s int) uint16 {
	return uint16(bpf.HookHookLimitHL_UNION_SLOT) - uint16(s)
}

// listPrefilter is a list's prefilter (pre in bpf/lib/hook.h's UNION_SLOT)
// when every hook of the list has prefilter values in the string slots of
// mask, and reads the call as the others do: 1 + the first such slot, or
// 0 for none.
func listPrefilter(mask uint8) uint8 {
	if mask == 0 {
		return 0
	}
	return uint8(1 + bits.TrailingZeros8(mask))
}

// prefilter says in which string slots (bit s for slot s) every selector
// of a hook needs the call's string to equal or start with one of its
// values, and returns those values moved to the union's match slots: a
// string that is none of them matches no selector of the hook. A hook
// with no selectors matches every call and has none.
func prefilter(c *bpf.HookGenConf, keys []bpf.HookLpmKey) (uint8, []bpf.HookLpmKey) {
	if c.Nsel == 0 {
		return 0, nil
	}
	need := uint8(1)<<MaxStringArgs - 1
	// the match slots of the entries that qualify, with their string slot
	from := map[uint16]int{}
	for _, sel := range c.Sel[:min(int(c.Nsel), len(c.Sel))] {
		var has uint8
		for _, m := range sel.M[:min(int(sel.Nmatch), len(sel.M))] {
			if MatchKind(m.Kind) != MatchArg || (Op(m.Op) != OpEqual && Op(m.Op) != OpPrefix) || int(m.Arg) >= min(int(c.Nargs), len(c.Args)) {
				continue
			}
			a := c.Args[m.Arg]
			// as eval_match in bpf/lib/hook.h: these are looked up as the
			// record's string a.Str
			if ArgKind(a.Type) == KindInt || SockSource(ArgSource(a.Src)) {
				continue
			}
			s := int(a.Str) % MaxStringArgs
			has |= 1 << s
			from[m.Slot] = s
		}
		need &= has
	}
	if need == 0 {
		return 0, nil
	}
	var out []bpf.HookLpmKey
	for _, k := range keys {
		if s, ok := from[k.Slot]; ok && need&(1<<s) != 0 {
			k.Slot = unionSlot(s)
			// once each: the union counts hooks, not entries
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return need, out
}

// pinMark is a hook's pin directory: while it exists, closing the hook
// leaves it in its object, whose programs are pinned (the agent exits and
// keeps its sensors); once it is removed, Close takes the hook out.
type pinMark string

func markPinned(dir string) (pinMark, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating pin directory: %w", err)
	}
	return pinMark(dir), nil
}

// held reports whether the hook is pinned and its directory still exists.
func (m pinMark) held() bool {
	if m == "" {
		return false
	}
	_, err := os.Stat(string(m))
	return err == nil
}

// listing is whether a hook is in its object's lists (calls run it), and
// since when: its owner's Swap sets it, under the owner's lock.
type listing struct {
	listed bool
	since  uint64 // Ktime of the swap that listed it
}

func (l *listing) list(now uint64) { l.listed, l.since = true, now }
func (l *listing) unlist()         { l.listed = false }

// listedSince is when the hook was listed, 0 while it is not.
func (l *listing) listedSince() uint64 {
	if !l.listed {
		return 0
	}
	return l.since
}
