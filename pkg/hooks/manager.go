package hooks

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// ErrConflict means a policy of that name is loaded already.
var ErrConflict = errors.New("a policy with this name is already loaded")

// hookObject is a loaded, attached hook of any mechanism.
type hookObject interface {
	Stats() (sensor.GenericStats, error)
	// Pin pins what keeps the hook attached under dir.
	Pin(dir string) error
	// Close releases the agent's handles; a pinned hook stays attached.
	Close() error
	// ListedSince is when the hook began to run (sensor.Ktime), 0 while
	// it does not.
	ListedSince() uint64
}

type loadedHook struct {
	id   uint32
	obj  hookObject
	info *hookInfo
}

type loadedPolicy struct {
	name  string
	hooks []*loadedHook
	// dir holds this version's pins; empty when not pinning
	dir string
	// loader is the version's hold on the loader sensor (spec.loader);
	// nil without
	loader *loaderUse
}

// HookStatus describes one loaded hook.
type HookStatus struct {
	// Kind is kprobe, fentry, tracepoint, uprobe, usdt or lsm; Call names the hook
	// within its kind (function, group/event, path and symbol, path and
	// provider:name, LSM hook).
	Kind      string
	Call      string
	Mechanism string
	Stats     sensor.GenericStats
	// Objects are the ids of the counters maps of the bpf/hook.c objects
	// serving the hook (one; one per site of a USDT probe; none for the
	// syscall dispatcher's hooks): what tells its programs apart from
	// the other objects' in the kernel's program list.
	Objects []ebpf.MapID
}

// PolicyStatus describes one loaded policy.
type PolicyStatus struct {
	Name  string
	Hooks []HookStatus
}

// Manager loads policies' hooks and describes them to the event builder. It is
// safe for concurrent use.
type Manager struct {
	log    zerolog.Logger
	events *ebpf.Map
	opts   sensor.Options

	// pinRoot is the bpffs directory policies are pinned under, one
	// subdirectory per policy and version; empty: no pins
	pinRoot string
	// adoptRoot is the previous run's pin root, whose syscall dispatcher
	// and attach points' objects this run adopts where it needs them
	// (AdoptFrom); empty: none
	adoptRoot string

	// dispatchMu guards dispatch, the syscall dispatcher every hook of
	// the syscall-tracepoint mapping shares, loaded when the first needs
	// it, and points, the objects of every other mechanism's hooks (one
	// per attach point and layout), made with the first such hook
	dispatchMu sync.Mutex
	dispatch   *sensor.Dispatcher
	points     *sensor.Points

	mu       sync.RWMutex
	version  uint64
	hooks    map[uint32]*loadedHook
	policies map[string]*loadedPolicy
	// stale are pin directories of versions that are no longer ours but
	// could not be unpinned (too many open files, say): the kernel still
	// runs them, so Sweep tries again until they are gone
	stale []staleVersion

	// sockTrack is the map of sockets TrackSock follows, shared by every
	// hook object so that one hook's tracking serves the others; created
	// with the first hook, closed with the manager (a pinned hook keeps
	// its own reference)
	sockMu    sync.Mutex
	sockTrack *ebpf.Map

	// scopes resolves scoped policies' pods (nil: such policies are
	// refused); scopeMu serializes the hooks' cgroup fills
	scopes  Scopes
	scopeMu sync.Mutex

	// remote: the agent performs GetUrl and DnsLookup
	// (EnableRemoteActions); false: policies using them are refused
	remote bool

	// loader is the loader sensor the policies with loader: true share
	loader loaderShare

	// kernel is the running kernel's BTF, read for the compiler the first
	// time a policy is built, when opts has none (nil: not read yet, or
	// reading failed and is tried again)
	kernelMu sync.Mutex
	kernel   *btf.Spec
}

// NewManager returns a manager whose hooks write to events.
func NewManager(log zerolog.Logger, events *ebpf.Map, opts sensor.Options) *Manager {
	return &Manager{log: log, events: events, opts: opts, hooks: map[uint32]*loadedHook{}, policies: map[string]*loadedPolicy{}}
}

// PinUnder makes the manager pin every hook it attaches from now on under
// dir (a bpffs directory), dir/<policy>/<version>/hook<i>. Call it before
// loading anything.
func (m *Manager) PinUnder(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pinRoot = dir
}

// AdoptFrom makes the manager adopt the syscall dispatcher and the attach
// points' objects a previous run pinned under dir (that run's PinUnder),
// when this binary runs the same objects and they write to the same ring
// buffer (sensor.AdoptDispatcher, sensor.Points.Adopt): their programs
// are not verified again, and the previous run's hooks enforce until this
// run's take over, or ReleaseAdopted. Call it before loading anything.
func (m *Manager) AdoptFrom(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.adoptRoot = dir
}

// ReleaseAdopted drops the previous run's hooks the adopted dispatcher
// and attach points' objects still serve: those of policies this run did
// not load again. Its error also says which objects were loaded again
// instead of adopted.
func (m *Manager) ReleaseAdopted() error {
	m.dispatchMu.Lock()
	defer m.dispatchMu.Unlock()
	m.mu.Lock()
	m.adoptRoot = ""
	m.mu.Unlock()
	var errs []error
	if m.dispatch != nil {
		errs = append(errs, m.dispatch.ReleaseAdopted())
	}
	if m.points != nil {
		errs = append(errs, m.points.ReleaseAdopted())
	}
	return errors.Join(errs...)
}

// LoadPolicy loads a parsed TracingPolicy under its metadata name.
func (m *Manager) LoadPolicy(p *tracingpolicy.TracingPolicy) error {
	decls, err := compiler.FromPolicy(p, m.scopesSet())
	if err != nil {
		return err
	}
	if err := m.checkLoader(p); err != nil {
		return err
	}
	return m.load(p.Metadata.Name, decls, loaderOf(p))
}

// ReplacePolicy loads a new version of a loaded policy; see Replace.
func (m *Manager) ReplacePolicy(p *tracingpolicy.TracingPolicy) error {
	decls, err := compiler.FromPolicy(p, m.scopesSet())
	if err != nil {
		return err
	}
	if err := m.checkLoader(p); err != nil {
		return err
	}
	return m.replace(p.Metadata.Name, decls, loaderOf(p))
}

// loaderOf locates a policy's loader: true; nil without.
func loaderOf(p *tracingpolicy.TracingPolicy) *tracingpolicy.Source {
	if !p.Spec.Loader {
		return nil
	}
	return &p.Spec.LoaderSrc
}

// Load compiles and attaches every hook of a policy; if one fails, none
// stays loaded.
func (m *Manager) Load(policy string, hooks []compiler.Decl) error { return m.load(policy, hooks, nil) }

// load is Load, with the policy's loader sensor where loader locates one.
func (m *Manager) load(policy string, hooks []compiler.Decl, loader *tracingpolicy.Source) error {
	m.mu.RLock()
	_, exists := m.policies[policy]
	m.mu.RUnlock()
	if exists {
		return fmt.Errorf("policy %q: %w", policy, ErrConflict)
	}
	lp, err := m.build(policy, hooks, loader)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if _, ok := m.policies[policy]; ok {
		m.mu.Unlock()
		m.discard(lp)
		return fmt.Errorf("policy %q: %w", policy, ErrConflict)
	}
	m.install(lp)
	m.mu.Unlock()
	m.refill(lp)
	if err := m.swap(lp, nil); err != nil {
		m.mu.Lock()
		m.uninstall(lp)
		m.mu.Unlock()
		m.discard(lp)
		return fmt.Errorf("policy %q: %w", policy, err)
	}
	return nil
}

// ReportingSince is when this run's hook id began to enforce and report
// (sensor.Ktime): a record of the same hook that a previous run's pinned
// sensors wrote from then on was seen by this run too. False when no
// loaded hook has the id.
func (m *Manager) ReportingSince(id uint32) (uint64, bool) {
	m.mu.RLock()
	h := m.hooks[id]
	m.mu.RUnlock()
	if h == nil {
		return 0, false
	}
	since := h.obj.ListedSince()
	return since, since != 0
}

// swap makes the kernel run the new version's hooks instead of the old
// version's, in one step per syscall (the dispatcher's hooks) and per
// attach point (the others): a call runs one version's hooks there, never
// both or half of each.
func (m *Manager) swap(lp, old *loadedPolicy) error {
	add, remove := lp.dataHooks(), old.dataHooks()
	if len(add) > 0 || len(remove) > 0 {
		d, err := m.dispatcher()
		if err != nil {
			return err
		}
		if err := d.Swap(add, remove); err != nil {
			return err
		}
		if err := d.FilterErr(); err != nil {
			m.log.Warn().Err(err).Msg("The syscall dispatcher runs without one of its filters: system calls take a longer path (correct, slower)")
		}
	}
	padd, premove := lp.progHooks(), old.progHooks()
	if len(padd) == 0 && len(premove) == 0 {
		return nil
	}
	ps, err := m.hookObjects()
	if err == nil {
		err = ps.Swap(padd, premove)
	}
	if err != nil && (len(add) > 0 || len(remove) > 0) {
		// back to the old version in the dispatcher too
		if d, derr := m.dispatcher(); derr == nil {
			err = errors.Join(err, d.Swap(remove, add))
		}
	}
	return err
}

// progHooks are the version's hooks served by attach points' objects.
func (lp *loadedPolicy) progHooks() []*sensor.ProgHook {
	if lp == nil {
		return nil
	}
	var out []*sensor.ProgHook
	for _, h := range lp.hooks {
		switch o := h.obj.(type) {
		case *sensor.ProgHook:
			out = append(out, o)
		case usdtSites:
			out = append(out, o...)
		}
	}
	return out
}

// dataHooks are the version's hooks the syscall dispatcher serves.
func (lp *loadedPolicy) dataHooks() []*sensor.DataHook {
	if lp == nil {
		return nil
	}
	var out []*sensor.DataHook
	for _, h := range lp.hooks {
		if dh, ok := h.obj.(*sensor.DataHook); ok {
			out = append(out, dh)
		}
	}
	return out
}

// uninstall takes a published version out; m.mu is held.
func (m *Manager) uninstall(lp *loadedPolicy) {
	delete(m.policies, lp.name)
	for _, h := range lp.hooks {
		delete(m.hooks, h.id)
	}
}

// Replace swaps a loaded policy for a new version, make-before-break: the
// new hooks are attached (and pinned) before the old ones are detached, so
// at no moment does neither enforce. If the new version fails, the old one
// stays as it was.
func (m *Manager) Replace(policy string, hooks []compiler.Decl) error {
	return m.replace(policy, hooks, nil)
}

// replace is Replace, with the new version's loader sensor where loader
// locates one: the new version takes its hold before the old one lets go,
// so the sensor stays attached across the replacement.
func (m *Manager) replace(policy string, hooks []compiler.Decl, loader *tracingpolicy.Source) error {
	lp, err := m.build(policy, hooks, loader)
	if err != nil {
		return err
	}
	m.mu.Lock()
	old := m.policies[policy]
	if old != nil {
		m.uninstall(old)
	}
	m.install(lp)
	m.mu.Unlock()
	m.refill(lp)
	if err := m.swap(lp, old); err != nil {
		// the old version still enforces: its hooks were never detached
		m.mu.Lock()
		m.uninstall(lp)
		if old != nil {
			m.install(old)
		}
		m.mu.Unlock()
		m.discard(lp)
		return fmt.Errorf("policy %q: %w", policy, err)
	}
	if old != nil {
		// the new version enforces; an old one left pinned is swept later
		m.discard(old)
	}
	return nil
}

// PinName is a policy's directory name under the pin root. bpffs refuses
// names with a dot (its files are named by the kernel, and "." marks them),
// and Tetragon's policy names are DNS subdomains, often dotted
// ("process.credentials.changes.at.syscalls"): "%" and "." are escaped as
// "%25" and "%2e", so distinct names stay distinct.
func PinName(policy string) string {
	return strings.NewReplacer("%", "%25", ".", "%2e").Replace(policy)
}

// build attaches a policy's hooks, and the loader sensor where loader
// locates one, without publishing them.
func (m *Manager) build(policy string, hooks []compiler.Decl, loader *tracingpolicy.Source) (*loadedPolicy, error) {
	facts := m.facts()
	hooks, err := compiler.ExpandLists(hooks, facts)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", policy, err)
	}
	if err := m.checkRemote(hooks); err != nil {
		return nil, fmt.Errorf("policy %q: %w", policy, err)
	}
	m.mu.Lock()
	ids, keys := m.hookIDs(policy, hooks)
	m.version++
	lp := &loadedPolicy{name: policy}
	if m.pinRoot != "" {
		lp.dir = filepath.Join(m.pinRoot, PinName(policy), strconv.FormatUint(m.version, 10))
	}
	m.mu.Unlock()

	// The pin directories are made before any hook attaches: a policy may
	// refuse mkdir itself (Tetragon's override-security.yaml overrides
	// every security_inode_mkdir), and its own hooks must not stop it from
	// being pinned. Pinning into a directory that exists makes none.
	if lp.dir != "" {
		for i := range hooks {
			if err := os.MkdirAll(filepath.Join(lp.dir, fmt.Sprintf("hook%d", i)), 0o700); err != nil {
				m.discard(lp)
				return nil, fmt.Errorf("policy %q: creating pin directory: %w", policy, err)
			}
		}
	}
	for i, d := range hooks {
		d.Policy = policy
		id := ids[i]
		where := fmt.Sprintf("kprobes[%d]", i)
		if d.Src != (tracingpolicy.Source{}) {
			where = d.Src.String()
		}
		h, err := m.attach(d, id, keys[i], facts)
		if err != nil {
			m.discard(lp)
			return nil, fmt.Errorf("policy %q: %s: %w", policy, where, err)
		}
		lp.hooks = append(lp.hooks, h)
		// before any call can reach it (the dispatcher's hooks are not
		// in its lists yet), or at least before it is published: a
		// scoped hook with no cgroups matches nothing
		if err := m.fillScopes([]*loadedHook{h}); err != nil {
			m.discard(lp)
			return nil, fmt.Errorf("policy %q: %s: %w", policy, where, err)
		}
		if lp.dir != "" {
			if err := h.obj.Pin(filepath.Join(lp.dir, fmt.Sprintf("hook%d", i))); err != nil {
				m.discard(lp)
				return nil, fmt.Errorf("policy %q: %s: %w", policy, where, err)
			}
		}
		m.log.Info().Str("policy", policy).Str("hook", d.Name()).Str("mechanism", h.info.event.Mechanism).Msg("Hook attached")
	}
	if loader != nil {
		if lp.loader, err = m.useLoader(); err != nil {
			m.discard(lp)
			return nil, fmt.Errorf("policy %q: %s: %w", policy, loader, err)
		}
	}
	return lp, nil
}

// hookIDs gives each hook of a policy an id and a key derived from what
// it is, so that the same policy loaded again, by this run or the next,
// has the same ids: records a pinned hook wrote while no agent was running
// still find their hook after a restart. A collision of ids with another
// policy's hook moves on to the next id, so an id depends on the order the
// policies load; the key, a 64-bit hash of the same, does not, and is what
// tells the next run which adopted hook a hook replaces
// (sensor.HookSpec.Key). m.mu is held.
func (m *Manager) hookIDs(policy string, hooks []compiler.Decl) (ids []uint32, keys []uint64) {
	taken := map[uint32]bool{0: true}
	for id, h := range m.hooks {
		if h.info.decl.Policy != policy {
			taken[id] = true
		}
	}
	for i, d := range hooks {
		d.Policy = policy
		// a pointer would print as an address, which differs per run
		d.Scope = nil
		what := fmt.Sprintf("%d %+v", i, d)
		h32, h64 := fnv.New32a(), fnv.New64a()
		h32.Write([]byte(what))
		h64.Write([]byte(what))
		id := h32.Sum32()
		for taken[id] {
			id++
		}
		taken[id] = true
		ids, keys = append(ids, id), append(keys, h64.Sum64())
	}
	return ids, keys
}

// refill fills a just published version's scoped hooks again: a change
// of pods between its build and its publication reached only the versions
// published then (RefreshScopes).
func (m *Manager) refill(lp *loadedPolicy) {
	if err := m.fillScopes(lp.hooks); err != nil {
		m.log.Error().Err(err).Str("policy", lp.name).Msg("Updating the pods a policy applies to failed; it keeps the ones it had")
	}
}

// install publishes a built policy; m.mu is held.
func (m *Manager) install(lp *loadedPolicy) {
	m.policies[lp.name] = lp
	for _, h := range lp.hooks {
		m.hooks[h.id] = h
	}
}

// hookInfo is what the manager keeps of a loaded hook: its declaration,
// and what its records' events need.
type hookInfo struct {
	decl  compiler.Decl
	event hookevent.Hook
}

// attach compiles one hook for the mechanism that serves it and stages it
// with its key (hookIDs).
func (m *Manager) attach(d compiler.Decl, id uint32, key uint64, facts compiler.Facts) (*loadedHook, error) {
	c, err := compiler.Hook(d, id, facts)
	if err != nil {
		return nil, err
	}
	if c.Syscalls != nil {
		c.Syscalls.Key = key
	}
	for i := range c.Progs {
		c.Progs[i].Key = key
	}
	obj, err := m.stage(d, c)
	if err != nil {
		return nil, err
	}
	info := hookInfo{decl: d, event: c.Event}
	if k, ok := obj.(*sensor.ProgHook); ok {
		info.event.Stacks = k.Stack
	}
	return &loadedHook{id: id, obj: obj, info: &info}, nil
}

// facts are what the compiler needs to know of the kernel: the probed
// features, and its BTF, read once (a hook needing it fails with the
// reason it could not be read; the others do not need it).
func (m *Manager) facts() compiler.Facts {
	f := compiler.Facts{Features: m.opts.Features, Kernel: m.opts.KernelTypes}
	if f.Kernel != nil {
		return f
	}
	m.kernelMu.Lock()
	defer m.kernelMu.Unlock()
	if m.kernel == nil {
		f.Kernel, f.KernelErr = btf.LoadKernelSpec()
		m.kernel = f.Kernel
	}
	f.Kernel = m.kernel
	return f
}

// DispatcherPin is the syscall dispatcher's directory under the pin root:
// PinName escapes "%", so no policy's directory has this name.
const DispatcherPin = "%syscalls"

// dispatcher returns the syscall dispatcher, loading it the first time.
func (m *Manager) dispatcher() (*sensor.Dispatcher, error) {
	m.dispatchMu.Lock()
	defer m.dispatchMu.Unlock()
	if m.dispatch != nil {
		return m.dispatch, nil
	}
	m.mu.RLock()
	pin, adopt := m.pinRoot, m.adoptRoot
	m.mu.RUnlock()
	if pin != "" {
		pin = filepath.Join(pin, DispatcherPin)
	}
	if adopt != "" {
		d, err := sensor.AdoptDispatcher(filepath.Join(adopt, DispatcherPin), m.events, m.opts, pin)
		if err == nil {
			m.log.Info().Msg("Adopted the previous run's syscall dispatcher: its policies enforce until this run's replace them")
			m.dispatch = d
			return d, nil
		}
		m.log.Info().Err(err).Msg("Loading a new syscall dispatcher; the previous run's enforces until the policies are loaded")
	}
	d, err := sensor.NewDispatcher(m.events, m.opts, pin)
	if err != nil {
		return nil, err
	}
	m.dispatch = d
	return d, nil
}

// PointsPin is the directory of the attach points' objects under the pin
// root (see DispatcherPin).
const PointsPin = "%hooks"

// hookObjects returns the owner of the attach points' objects, making it
// the first time.
func (m *Manager) hookObjects() (*sensor.Points, error) {
	m.dispatchMu.Lock()
	defer m.dispatchMu.Unlock()
	if m.points != nil {
		return m.points, nil
	}
	m.mu.RLock()
	pin, adopt := m.pinRoot, m.adoptRoot
	m.mu.RUnlock()
	if pin != "" {
		pin = filepath.Join(pin, PointsPin)
	}
	opts := m.opts
	var err error
	// every object shares the tracked sockets
	if opts.SockTrack, err = m.sockTrackMap(); err != nil {
		return nil, err
	}
	ps, err := sensor.NewPoints(m.events, opts, pin)
	if err != nil {
		return nil, err
	}
	if adopt != "" {
		ps.Adopt(filepath.Join(adopt, PointsPin))
	}
	m.points = ps
	return ps, nil
}

// sockTrackMap returns the map of tracked sockets, creating it on first
// use.
func (m *Manager) sockTrackMap() (*ebpf.Map, error) {
	m.sockMu.Lock()
	defer m.sockMu.Unlock()
	m.mu.RLock()
	adopt := m.adoptRoot
	m.mu.RUnlock()
	if m.sockTrack == nil && adopt != "" {
		// the previous run's: the objects adopted from it track sockets
		// in it
		if st, err := sensor.OpenSockTrack(filepath.Join(adopt, PointsPin, "socktrack")); err == nil {
			m.sockTrack = st
		}
	}
	if m.sockTrack == nil {
		st, err := sensor.NewSockTrack()
		if err != nil {
			return nil, err
		}
		m.sockTrack = st
	}
	return m.sockTrack, nil
}

// Unload detaches a policy's hooks. If its pins cannot be removed, the
// policy stays loaded (it still enforces through them) and Unload can be
// tried again: forgetting it would leave it enforcing unseen.
func (m *Manager) Unload(policy string) error {
	m.mu.RLock()
	lp, ok := m.policies[policy]
	m.mu.RUnlock()
	if !ok {
		return fmt.Errorf("policy %q is not loaded", policy)
	}
	// the caller (the registry) serialises loads and unloads of a policy,
	// so lp is still the published version after the unpin
	if err := lp.unpin(); err != nil {
		return fmt.Errorf("policy %q stays loaded: %w", policy, err)
	}
	m.mu.Lock()
	delete(m.policies, policy)
	for _, h := range lp.hooks {
		delete(m.hooks, h.id)
	}
	m.mu.Unlock()
	return lp.close()
}

// staleVersion is a version whose pins could not be removed: dir, and the
// version's hooks, which stay in the kernel's maps while dir exists and
// are closed once Sweep removed it.
type staleVersion struct {
	dir   string
	hooks []hookObject
}

// discard detaches a version that is not (or no longer) published; pins
// that cannot be removed now are kept for Sweep. m.mu is not held.
func (m *Manager) discard(lp *loadedPolicy) {
	if err := lp.unpin(); err != nil {
		m.log.Error().Err(err).Str("policy", lp.name).Msg("A version stays pinned and enforcing; removing it is tried again")
		m.mu.Lock()
		m.stale = append(m.stale, staleVersion{dir: lp.dir, hooks: lp.objects()})
		m.mu.Unlock()
	}
	if err := lp.close(); err != nil {
		m.log.Warn().Err(err).Str("policy", lp.name).Msg("Closing a version's handles")
	}
}

// Sweep removes the pins of old versions that could not be removed
// before, and returns how many are still left.
func (m *Manager) Sweep() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	left := m.stale[:0]
	for _, v := range m.stale {
		if err := unpinDir(v.dir); err != nil {
			left = append(left, v)
			continue
		}
		// with its pins gone, a hook's Close removes it
		for _, h := range v.hooks {
			if err := h.Close(); err != nil {
				m.log.Warn().Err(err).Str("pins", v.dir).Msg("Removing an old version's hooks")
			}
		}
		m.log.Info().Str("pins", v.dir).Msg("Removed an old version's pins")
	}
	m.stale = left
	return len(m.stale)
}

// Status lists the loaded policies, sorted by name.
func (m *Manager) Status() []PolicyStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []PolicyStatus
	for _, lp := range m.policies {
		ps := PolicyStatus{Name: lp.name}
		for _, h := range lp.hooks {
			st, err := h.obj.Stats()
			if err != nil {
				m.log.Debug().Err(err).Msg("Reading hook counters")
			}
			ps.Hooks = append(ps.Hooks, HookStatus{Kind: hookKind(h.info.decl), Call: h.info.decl.Name(), Mechanism: h.info.event.Mechanism, Stats: st,
				Objects: objectIDs(h.obj)})
		}
		if lp.loader != nil {
			st, err := lp.loader.stats()
			if err != nil {
				m.log.Debug().Err(err).Msg("Reading loader counters")
			}
			ps.Hooks = append(ps.Hooks, HookStatus{Kind: HookKindLoader, Call: sensor.LoaderFunc, Mechanism: compiler.MechKprobe, Stats: st})
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close unloads everything and removes its pins.
func (m *Manager) Close() error { return m.release(false) }

// Keep releases the agent's handles but leaves every pinned hook attached,
// so enforcement holds while the agent is down (--keep-sensors-on-exit).
func (m *Manager) Keep() error { return m.release(true) }

func (m *Manager) release(keep bool) error {
	// dispatchMu before mu, as dispatcher() and hookObjects() take them
	m.dispatchMu.Lock()
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	// the dispatcher first: closing it detaches every hook it serves at
	// once, where removing them one by one waits for running calls each
	// time (a kept, pinned dispatcher stays attached, hooks and all)
	if m.dispatch != nil {
		if !keep {
			errs = append(errs, m.dispatch.Unpin())
		}
		errs = append(errs, m.dispatch.Close())
		m.dispatch = nil
	}
	if m.points != nil {
		if !keep {
			errs = append(errs, m.points.Unpin())
		}
		errs = append(errs, m.points.Close())
		m.points = nil
	}
	m.dispatchMu.Unlock()
	for name, lp := range m.policies {
		if !keep {
			errs = append(errs, lp.unpin())
		}
		errs = append(errs, lp.close())
		delete(m.policies, name)
	}
	clear(m.hooks)
	if !keep && m.pinRoot != "" {
		errs = append(errs, os.RemoveAll(m.pinRoot))
	}
	m.sockMu.Lock()
	if m.sockTrack != nil {
		errs = append(errs, m.sockTrack.Close())
		m.sockTrack = nil
	}
	m.sockMu.Unlock()
	return errors.Join(errs...)
}

// objects are the version's hooks.
func (lp *loadedPolicy) objects() []hookObject {
	out := make([]hookObject, 0, len(lp.hooks))
	for _, h := range lp.hooks {
		out = append(out, h.obj)
	}
	return out
}

// close releases the policy's handles; pinned hooks stay attached.
func (lp *loadedPolicy) close() error {
	var errs []error
	for _, h := range lp.hooks {
		errs = append(errs, h.obj.Close())
	}
	lp.hooks = nil
	if lp.loader != nil {
		errs = append(errs, lp.loader.release())
	}
	return errors.Join(errs...)
}

// unpin removes the policy's pins. Pins first, then handles closed: in
// that order the detach happens when our handle closes, synchronously; a
// link whose last reference is its pin is released by a kernel worker,
// later.
func (lp *loadedPolicy) unpin() error {
	if lp.dir == "" {
		return nil
	}
	return unpinDir(lp.dir)
}

func unpinDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing pins %s: %w", dir, err)
	}
	// the policy's directory too, if no other version is left
	if err := os.Remove(filepath.Dir(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("removing pins %s: %w", filepath.Dir(dir), err)
	}
	return nil
}

// Hook describes, for its records' events, the loaded hook with id id; nil
// when no hook has that id any more (its policy was unloaded while the
// record was queued).
func (m *Manager) Hook(id uint32) *hookevent.Hook {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h := m.hooks[id]; h != nil {
		return &h.info.event
	}
	return nil
}

// objectIDs are the counters map ids of the objects serving o.
func objectIDs(o hookObject) []ebpf.MapID {
	var hs []*sensor.ProgHook
	switch o := o.(type) {
	case *sensor.ProgHook:
		hs = append(hs, o)
	case usdtSites:
		hs = o
	}
	var ids []ebpf.MapID
	for _, h := range hs {
		if id, ok := h.StatsMapID(); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// hookKind names the policy list a hook comes from in listings: kprobe,
// fentry, tracepoint, uprobe or lsm.
func hookKind(d compiler.Decl) string {
	if d.Fentry {
		return "fentry"
	}
	return string(cmp.Or(d.Kind, hookevent.KindKprobe))
}
