package sensor

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// hookTables are the maps through which one object serves many hooks, in
// the layout bpf/lib/hook.h gives the dispatcher and the attach points'
// objects alike: configurations by hook slot, match strings by match
// slot, scoped hooks' cgroups, counters; and which slots are taken. Its
// owner serializes the calls.
type hookTables struct {
	// what names the object in errors
	what                           string
	confs, strings, cgroups, stats *ebpf.Map
	slots, strSlots                []bool
}

func newHookTables(what string, confs, strings, cgroups, stats *ebpf.Map, slots int) *hookTables {
	t := &hookTables{what: what, confs: confs, strings: strings, cgroups: cgroups, stats: stats,
		slots: make([]bool, slots), strSlots: make([]bool, dispatchStrings+1)}
	t.strSlots[0] = true // slot 0: entries without strings
	return t
}

// hookEntries are one hook's entries in hookTables.
type hookEntries struct {
	slot     uint32
	conf     bpf.HookGenConf
	strSlots []uint16
	keys     []bpf.HookLpmKey
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
	conf.Slot = uint16(slot)
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
	if err := t.confs.Put(e.slot, conf); err != nil {
		return fail(fmt.Errorf("writing hook config: %w", err))
	}
	return e, nil
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
	t.slots[e.slot] = false
}

// memory is what the hook's entries take: its configuration and match
// strings.
func (e *hookEntries) memory() int {
	return sizeOf(e.conf) + len(e.keys)*(sizeOf(bpf.HookLpmKey{})+1)
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
