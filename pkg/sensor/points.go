package sensor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/bpf"
)

// pointSlots is how many hooks one attach point's object serves.
const pointSlots = int(bpf.HookPointLimitPL_POINT_SLOTS)

// Points owns the objects of bpf/hook.c. An object is loaded, verified and
// attached once per attach point and load-time layout (the function, the
// programs, and the settings the verifier reads as constants: argument
// widths, resolve paths, tracepoint fields); every hook of every policy
// with the same point and layout is data in its maps: a configuration, match
// strings and a place in its list. Adding or removing such a hook writes map
// entries only. It is safe for concurrent use.
type Points struct {
	mu     sync.Mutex
	events *ebpf.Map
	opts   Options
	pinDir string
	// grace: a hook's entries are deleted once no call can read them
	grace  *grace
	points map[*point]bool
	// byKey: the objects hooks can share (pointKey)
	byKey map[string]*point
	// pins numbers the pin directories of objects of one hook's own
	pins int
	// adoptDir is the previous run's objects' directory, whose objects
	// Stage adopts instead of loading them again (Adopt); adopted are the
	// previous run's hooks they still serve (ReleaseAdopted), and
	// notAdopted why objects there were loaded again
	adoptDir   string
	adopted    []*ProgHook
	notAdopted []error
	// taken are the pin directories under adoptDir adopted so far
	taken map[string]bool
	// staged are the hooks whose entries this run wrote
	staged map[*ProgHook]bool
	closed bool
}

// point is one loaded object and the hooks it serves.
type point struct {
	key    string
	spec   ProgHookSpec // the first hook's: what the programs attach to
	coll   *ebpf.Collection
	progs  []string // loaded programs, in attach order
	links  []link.Link
	pinDir string
	// listed: the hooks calls run, in order; staged counts every hook
	// whose entries are in the maps, listed or not
	listed []*ProgHook
	staged int
	tables *hookTables
	// own: the object's one hook runs alone (cfg.Own), with no list,
	// prefilter or object counters
	own bool
	// adopted: a previous run loaded it (Points.Adopt)
	adopted bool
	// memory is objectMemory's
	memory uint64
}

// ProgHook is a hook an attach point's object serves.
type ProgHook struct {
	ps *Points
	// p is its object and e its entries there; nil once removed
	p *point
	e *hookEntries
	listing
	scope *cgroupScope
	pin   pinMark
	// own is the Points LoadProgHook made for this hook alone
	own *Points
}

// NewPoints makes the owner of the hook objects whose records go to
// events. With pinDir, every object it loads pins its links there (the
// --keep-sensors-on-exit path).
func NewPoints(events *ebpf.Map, opts Options, pinDir string) (*Points, error) {
	ps := &Points{events: events, opts: opts, pinDir: pinDir, points: map[*point]bool{}, byKey: map[string]*point{},
		staged: map[*ProgHook]bool{}, taken: map[string]bool{}}
	var err error
	if ps.grace, err = newGrace(); err != nil {
		return nil, fmt.Errorf("the hook objects: %w", err)
	}
	return ps, nil
}

// LoadProgHook loads and attaches a hook on a kernel function whose records
// go to events, in an object of its own. On error nothing stays loaded.
func LoadProgHook(spec ProgHookSpec, events *ebpf.Map, opts Options) (*ProgHook, error) {
	return loadOwn(spec, events, opts, true)
}

// loadProgHook loads and configures a hook without attaching it: the
// verifier's verdict and the configuration are independent of whether
// this kernel can attach kprobes.
func loadProgHook(spec ProgHookSpec, events *ebpf.Map, opts Options) (*ProgHook, error) {
	return loadOwn(spec, events, opts, false)
}

func loadOwn(spec ProgHookSpec, events *ebpf.Map, opts Options, attach bool) (*ProgHook, error) {
	ps, err := NewPoints(events, opts, "")
	if err != nil {
		return nil, err
	}
	h, err := ps.stage(spec, attach)
	if err == nil {
		if err = ps.Swap([]*ProgHook{h}, nil); err != nil {
			h.Close()
		}
	}
	if err != nil {
		ps.Close()
		return nil, err
	}
	h.own = ps
	return h, nil
}

// Stage writes a hook's configuration and match strings into the object
// of its attach point and layout, which is loaded and attached the first
// time, but lists it nowhere: no call runs it before Swap. On error
// nothing of it stays.
func (ps *Points) Stage(spec ProgHookSpec) (*ProgHook, error) {
	return ps.stage(spec, true)
}

func (ps *Points) stage(spec ProgHookSpec, attach bool) (*ProgHook, error) {
	cfg, progs, err := hookCfg(spec)
	if err != nil {
		return nil, err
	}
	if ps.opts.ExecCreds == nil && UsesExecCreds(HookSpec{Selectors: spec.Selectors}) {
		return nil, errNoExecCreds
	}
	key, err := pointKey(spec, cfg, progs)
	if err != nil {
		return nil, err
	}
	// The verifier runs without ps.mu: it takes tens of milliseconds to
	// seconds, and the event path (Stack), the metrics (Stats) and other
	// objects' swaps need the lock meanwhile.
	var coll *ebpf.Collection
	var p *point
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.adoptDir != "" && attach && !ps.closed && (cfg.Own || ps.byKey[key] == nil) {
		p = ps.adoptPoint(key, spec, progs, cfg.Own)
	}
	for p == nil && ps.byKey[key] == nil && coll == nil && !ps.closed {
		ps.mu.Unlock()
		coll, err = loadObject(spec, cfg, progs, usesStacks(spec), ps.events, ps.opts)
		ps.mu.Lock()
		if err != nil {
			return nil, err
		}
	}
	if ps.closed {
		if coll != nil {
			coll.Close()
		}
		return nil, errors.New("the hook objects are closed")
	}
	if p == nil {
		p = ps.byKey[key]
	}
	if p == nil {
		if p, err = ps.newPoint(key, spec, cfg, coll, progs, attach); err != nil {
			return nil, err
		}
	} else if coll != nil {
		coll.Close() // another Stage loaded the same object meanwhile
	}
	h, err := p.stage(spec)
	if err != nil {
		if p.staged == 0 {
			ps.closePoint(p)
		}
		return nil, err
	}
	h.ps = ps
	ps.staged[h] = true
	return h, nil
}

// pointKey names what hooks share an object: the attach point, the
// programs, whether stacks are kept, and the load-time settings. A hook
// with cfg.Own set (it records stacks, overrides at return or writes
// registers) gets an object of its own.
func pointKey(spec ProgHookSpec, cfg bpf.HookHookCfg, progs []string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d|%s|%s|%s|%#x|%#x|%v|%v|", spec.Attach, spec.Group, spec.Symbol, spec.Path, spec.Offset, spec.RefCtrOffset, progs, usesStacks(spec))
	if err := binary.Write(&b, binary.LittleEndian, cfg); err != nil {
		return "", fmt.Errorf("encoding the hook's settings: %w", err)
	}
	return b.String(), nil
}

// newPoint makes a loaded object a point, and attaches it; ps.mu is held.
// On error the object is closed.
func (ps *Points) newPoint(key string, spec ProgHookSpec, cfg bpf.HookHookCfg, coll *ebpf.Collection, progs []string, attach bool) (*point, error) {
	p := &point{key: key, spec: spec, coll: coll, progs: progs, memory: objectMemory(coll),
		tables: newHookTables("the "+spec.Symbol+" object", ps.opts.RunTag, coll.Maps["conf"], coll.Maps["strings"], coll.Maps["hook_cgroups"], coll.Maps["stats"], pointSlots)}
	if cfg.Own {
		// no other hook will find it
		p.key = ""
	}
	p.own = cfg.Own
	if attach {
		for _, name := range progs {
			l, err := attachProg(spec, name, coll.Programs[name])
			if err != nil {
				ps.closePoint(p)
				return nil, err
			}
			p.links = append(p.links, l)
		}
	}
	if ps.pinDir != "" && attach {
		p.pinDir = filepath.Join(ps.pinDir, ps.pointPin(key, p.own, spec.Key))
		if err := ps.pin(p); err != nil {
			ps.closePoint(p)
			return nil, err
		}
	}
	ps.points[p] = true
	if p.key != "" {
		ps.byKey[key] = p
	}
	return p, nil
}

// stage writes a hook's entries into p; ps.mu is held.
func (p *point) stage(spec ProgHookSpec) (*ProgHook, error) {
	e, err := p.tables.add(HookSpec{ID: spec.ID, Args: spec.Args, Selectors: spec.Selectors, Scoped: spec.Scoped, Key: spec.Key})
	if err != nil {
		return nil, err
	}
	p.staged++
	return &ProgHook{p: p, e: e, scope: e.scope}, nil
}

// Swap puts staged hooks into their objects' lists and takes old ones
// out, rewriting each list once: a call runs the old hooks or the new
// ones, never both or half of each. On error the lists are as they were.
// The old hooks' entries stay until they are closed.
func (ps *Points) Swap(add, remove []*ProgHook) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return errors.New("the hook objects are closed")
	}
	return ps.swap(add, remove)
}

// swap is Swap with ps.mu held.
func (ps *Points) swap(add, remove []*ProgHook) error {
	if len(ps.adopted) > 0 {
		add, remove = reconcile(ps.adopted, add, remove, (*ProgHook).state)
	}
	next := map[*point][]*ProgHook{}
	for _, h := range remove {
		if !h.listed {
			continue
		}
		if _, ok := next[h.p]; !ok {
			next[h.p] = slices.Clone(h.p.listed)
		}
		next[h.p] = slices.DeleteFunc(next[h.p], func(x *ProgHook) bool { return x == h })
	}
	for _, h := range add {
		if _, ok := next[h.p]; !ok {
			next[h.p] = slices.Clone(h.p.listed)
		}
		next[h.p] = append(next[h.p], h)
	}
	done := make([]*point, 0, len(next))
	for p, hooks := range next {
		if err := p.writeList(hooks); err != nil {
			for _, q := range done {
				q.writeList(q.listed) //nolint:errcheck // best effort: back to what was there
			}
			return err
		}
		done = append(done, p)
	}
	now := Ktime()
	for p, hooks := range next {
		p.listed = hooks
	}
	for _, h := range remove {
		h.unlist()
	}
	for _, h := range add {
		h.list(now)
	}
	return nil
}

// ListedSince is when the hook began to run on calls (Ktime), 0 while it
// is in no list.
func (h *ProgHook) ListedSince() uint64 {
	h.ps.mu.Lock()
	defer h.ps.mu.Unlock()
	return h.listedSince()
}

// writeList writes the object's list in one map update, with the
// prefilter when every hook reads the same arguments and has prefilter
// values in one string slot.
func (p *point) writeList(hooks []*ProgHook) error {
	var l bpf.HookPointList
	pre := uint8(1)<<MaxStringArgs - 1
	for i, h := range hooks {
		l.Slot[l.N] = h.e.slot
		if i > 0 && sameArgs(&h.e.conf, &hooks[i-1].e.conf) {
			// read once per call for both
			l.Slot[l.N] |= uint32(bpf.HookPointLimitPL_SLOT_SAME_ARGS)
		} else if i > 0 {
			pre = 0
		}
		pre &= h.e.pre
		l.N++
	}
	// an object of one hook's own runs it without the list
	if l.N > 0 && !p.own {
		l.Pre = listPrefilter(pre)
	}
	if err := p.coll.Maps["hooks"].Put(uint32(0), &l); err != nil {
		return fmt.Errorf("writing the hook list of %s: %w", p.spec.Symbol, err)
	}
	return nil
}

// sameArgs reports whether two hooks of an object read the same
// arguments the same way (the object's settings, the rest of how they are
// read, are the same for both).
func sameArgs(a, b *bpf.HookGenConf) bool {
	return a.Nargs == b.Nargs && a.Args == b.Args
}

// pin pins an object's links, maps and programs in p.pinDir, and the
// tracked sockets every object shares in the objects' directory: the next
// run adopts them (adoptPoint). ps.mu is held.
func (ps *Points) pin(p *point) error {
	if st := ps.opts.SockTrack; st != nil {
		path := filepath.Join(ps.pinDir, "socktrack")
		if err := os.MkdirAll(ps.pinDir, 0o700); err != nil {
			return fmt.Errorf("creating pin directory: %w", err)
		}
		if _, err := os.Stat(path); err != nil {
			// from a handle of its own: the manager's would take the pin
			// for done when it is removed (all objects closed) and made again
			c, err := st.Clone()
			if err != nil {
				return fmt.Errorf("pinning map %s: %w", path, err)
			}
			err = c.Pin(path)
			c.Close()
			if err != nil {
				return fmt.Errorf("pinning map %s: %w", path, err)
			}
		}
	}
	maps := map[string]*ebpf.Map{}
	for name, m := range p.coll.Maps {
		// not the data sections (.rodata, .bss): the programs hold them,
		// and nothing else reads them
		if !sharedMap(name) && !strings.HasPrefix(name, ".") {
			maps[name] = m
		}
	}
	if err := pinAll(p.pinDir, p.links, maps); err != nil {
		return err
	}
	for _, name := range p.progs {
		path := filepath.Join(p.pinDir, "prog_"+name)
		if err := p.coll.Programs[name].Pin(path); err != nil {
			return fmt.Errorf("pinning program %s: %w", path, err)
		}
	}
	return nil
}

// sharedMap says whether an object's map is one all objects share, and
// not its own: the base sensor's, or the tracked sockets.
func sharedMap(name string) bool {
	return name == "events" || name == "exec_creds" || name == "socktrack"
}

// pointPin names the pin directory of the object of key (pointKey): the
// next run finds by it the object it would load (adoptPoint). An object
// of one hook's own is found by the hook's key too (ownPrefix), and
// numbered, as a run may hold two (a new version's beside the old).
// ps.mu is held.
func (ps *Points) pointPin(key string, own bool, hookKey uint64) string {
	if !own {
		return pointName(key)
	}
	ps.pins++
	return ownPrefix(key, hookKey) + strconv.Itoa(ps.pins)
}

// pointName is the pin directory of the shared object of key.
func pointName(key string) string {
	sum := sha256.Sum256([]byte(bpf.HookDigest() + "|" + key))
	return hex.EncodeToString(sum[:8])
}

// ownPrefix begins the pin directories of the objects of key that the
// hook of hookKey (HookSpec.Key) has of its own: the next run's hook of
// that key adopts them.
func ownPrefix(key string, hookKey uint64) string {
	return "own-" + pointName(key+"|"+strconv.FormatUint(hookKey, 10)) + "-"
}

// closePoint detaches and unloads an object; ps.mu is held.
func (ps *Points) closePoint(p *point) error {
	var errs []error
	delete(ps.points, p)
	if p.pinDir != "" {
		errs = append(errs, os.RemoveAll(p.pinDir))
	}
	if len(ps.points) == 0 && ps.pinDir != "" {
		// the objects' directory too, when it was the last: no pins are
		// left of policies that are all unloaded
		if err := os.Remove(filepath.Join(ps.pinDir, "socktrack")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing the tracked sockets' pin: %w", err))
		}
		if err := os.Remove(ps.pinDir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("removing %s: %w", ps.pinDir, err))
		}
	}
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	p.coll.Close()
	if ps.byKey[p.key] == p {
		delete(ps.byKey, p.key)
	}
	return errors.Join(errs...)
}

// close takes the hook out of its list, deletes its entries once no call
// can read them, and unloads its object when it was the last; ps.mu is
// held.
func (h *ProgHook) close() error {
	ps := h.ps
	if err := ps.swap(nil, []*ProgHook{h}); err != nil {
		// still listed: its entries stay, and closing is tried again
		return err
	}
	p := h.p
	if p == nil {
		return nil
	}
	e := h.e
	h.p, h.e = nil, nil
	delete(ps.staged, h)
	p.staged--
	if p.staged == 0 {
		return ps.closePoint(p)
	}
	if err := ps.grace.wait(); err != nil {
		p.tables.free(e)
		return err
	}
	return p.tables.remove(e)
}

// Stats reads the hook's counters. In an object hooks share, Calls and
// Passed are the object's: the calls of the function, and those its
// prefilter decided with no hook run. Cached stays zero: the object keeps
// no verdict cache, as nothing would tell it about renames. Its memory is
// its own entries and its share of its object's.
func (h *ProgHook) Stats() (GenericStats, error) {
	h.ps.mu.Lock()
	p, e := h.p, h.e
	var share int
	if p != nil {
		share = p.staged
	}
	h.ps.mu.Unlock()
	if p == nil {
		return GenericStats{}, errors.New("the hook is closed")
	}
	s, err := readGenericStats(p.coll.Maps["stats"], e.slot*gsMax)
	if err == nil && !p.own {
		s.Calls, err = sumPerCPU(p.coll.Maps["point_stats"], uint32(bpf.HookPointStatPS_CALLS))
		if err == nil {
			s.Passed, err = sumPerCPU(p.coll.Maps["point_stats"], uint32(bpf.HookPointStatPS_PASSED))
		}
	}
	s.MemoryBytes = p.memory/uint64(max(share, 1)) + uint64(e.memory())
	return s, err
}

// objectMemory is what the kernel charges for an object's programs and
// its own maps, which does not change while it is loaded: Stats, which
// metrics read for every hook, reads it from the point.
func objectMemory(coll *ebpf.Collection) uint64 {
	var progs []*ebpf.Program
	for _, pr := range coll.Programs {
		progs = append(progs, pr)
	}
	var maps []*ebpf.Map
	for name, m := range coll.Maps {
		if !sharedMap(name) {
			maps = append(maps, m)
		}
	}
	return memlock(progs, maps)
}

// StatsMapID is the id of the counters map of the hook's object, which
// its programs use: it tells them apart from other objects' programs.
func (h *ProgHook) StatsMapID() (ebpf.MapID, bool) {
	h.ps.mu.Lock()
	p := h.p
	h.ps.mu.Unlock()
	if p == nil {
		return 0, false
	}
	info, err := p.coll.Maps["stats"].Info()
	if err != nil {
		return 0, false
	}
	return info.ID()
}

// Stack returns the frames (instruction addresses, innermost first) of
// stack id of the hook's stack map, and deletes it there: the map is
// small, and a stack that is not read again would keep its slot (a new
// stack hashing to it would be lost).
func (h *ProgHook) Stack(id int32) ([]uint64, error) {
	h.ps.mu.Lock()
	p := h.p
	h.ps.mu.Unlock()
	if p == nil {
		return nil, errors.New("the hook is closed")
	}
	var frames [MaxStackDepth]uint64
	m := p.coll.Maps["stacks"]
	if err := m.Lookup(uint32(id), &frames); err != nil {
		return nil, fmt.Errorf("reading stack %d: %w", id, err)
	}
	if err := m.Delete(uint32(id)); err != nil {
		return nil, fmt.Errorf("releasing stack %d: %w", id, err)
	}
	n := slices.Index(frames[:], 0)
	if n < 0 {
		n = len(frames)
	}
	return frames[:n], nil
}

// Pin marks the hook as pinned under dir: until dir is removed, closing
// the hook leaves it in its object, whose links are pinned (in the
// Points' directory; in dir for a hook of LoadProgHook, whose object is
// its own).
func (h *ProgHook) Pin(dir string) error {
	if h.own != nil {
		h.ps.mu.Lock()
		p := h.p
		h.ps.mu.Unlock()
		if err := pinAll(dir, p.links, map[string]*ebpf.Map{"stats": p.coll.Maps["stats"]}); err != nil {
			return err
		}
	}
	m, err := markPinned(dir)
	h.pin = m
	return err
}

// Close removes the hook from its object, unless it is pinned and its pin
// directory still exists (the agent exits and keeps its sensors): then
// only the handles of an object of its own are released.
func (h *ProgHook) Close() error {
	if h.pin.held() {
		if h.own != nil {
			return h.own.Close()
		}
		return nil
	}
	var err error
	h.ps.mu.Lock()
	if !h.ps.closed {
		err = h.close()
	}
	h.ps.mu.Unlock()
	if h.own != nil {
		err = errors.Join(err, h.own.Close())
	}
	return err
}

// Unpin removes the objects' pins; Close then detaches them.
func (ps *Points) Unpin() error {
	if ps.pinDir == "" {
		return nil
	}
	return os.RemoveAll(ps.pinDir)
}

// Close releases every object's handles. Unless they are pinned, that
// detaches them and every hook they serve.
func (ps *Points) Close() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.closed = true
	var errs []error
	if len(ps.adopted) > 0 {
		// a start that failed: the previous run's hooks go back
		errs = append(errs, ps.giveBack())
	}
	for p := range ps.points {
		for _, l := range p.links {
			errs = append(errs, l.Close())
		}
		p.links = nil
		p.coll.Close()
	}
	clear(ps.points)
	clear(ps.byKey)
	errs = append(errs, ps.grace.Close())
	return errors.Join(errs...)
}
