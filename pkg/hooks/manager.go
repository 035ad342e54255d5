package hooks

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
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
}

type loadedHook struct {
	id   uint32
	obj  hookObject
	info *hookInfo
}

type loadedPolicy struct {
	name  string
	hooks []*loadedHook
}

// HookStatus describes one loaded hook.
type HookStatus struct {
	Call      string
	Mechanism string
	Stats     sensor.GenericStats
}

// PolicyStatus describes one loaded policy.
type PolicyStatus struct {
	Name  string
	Hooks []HookStatus
}

// Manager loads policies' hooks and turns their records into events. It is
// safe for concurrent use.
type Manager struct {
	log    zerolog.Logger
	events *ebpf.Map
	opts   sensor.Options

	mu       sync.RWMutex
	nextID   uint32
	hooks    map[uint32]*hookInfo
	policies map[string]*loadedPolicy

	limitMu sync.Mutex
	// until holds, per rate-limited selector and scope, the kernel time
	// before which its events are not posted again
	until       map[limitKey]uint64
	rateLimited atomic.Uint64
}

type limitKey struct {
	hook, sel, id uint32
}

// maxLimitKeys bounds the rate limiter's memory; past it, expired entries
// are dropped.
const maxLimitKeys = 1 << 16

// NewManager returns a manager whose hooks write to events.
func NewManager(log zerolog.Logger, events *ebpf.Map, opts sensor.Options) *Manager {
	return &Manager{log: log, events: events, opts: opts, hooks: map[uint32]*hookInfo{}, policies: map[string]*loadedPolicy{},
		until: map[limitKey]uint64{}}
}

// LoadPolicy loads a parsed TracingPolicy under its metadata name.
func (m *Manager) LoadPolicy(p *tracingpolicy.TracingPolicy) error {
	decls, err := FromPolicy(p)
	if err != nil {
		return err
	}
	return m.Load(p.Metadata.Name, decls)
}

// Load compiles and attaches every hook of a policy; if one fails, none
// stays loaded.
func (m *Manager) Load(policy string, hooks []HookDecl) error {
	m.mu.Lock()
	if _, ok := m.policies[policy]; ok {
		m.mu.Unlock()
		return fmt.Errorf("policy %q: %w", policy, ErrConflict)
	}
	base := m.nextID
	m.nextID += uint32(len(hooks))
	m.mu.Unlock()

	lp := &loadedPolicy{name: policy}
	for i, d := range hooks {
		d.Policy = policy
		id := base + uint32(i) + 1
		where := fmt.Sprintf("kprobes[%d]", i)
		if d.Src != (tracingpolicy.Source{}) {
			where = d.Src.String()
		}
		h, err := m.attach(d, id)
		if err != nil {
			lp.close()
			return fmt.Errorf("policy %q: %s: %w", policy, where, err)
		}
		lp.hooks = append(lp.hooks, h)
		m.log.Info().Str("policy", policy).Str("call", d.Call).Str("mechanism", h.info.mechanism).Msg("Hook attached")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.policies[policy]; ok {
		lp.close()
		return fmt.Errorf("policy %q: %w", policy, ErrConflict)
	}
	m.policies[policy] = lp
	for _, h := range lp.hooks {
		m.hooks[h.id] = h.info
	}
	return nil
}

// attach compiles one hook for the mechanism that serves it and attaches it.
func (m *Manager) attach(d HookDecl, id uint32) (*loadedHook, error) {
	spec, info, err := compileSyscallMapping(d, id)
	if err != nil {
		return nil, err
	}
	g, err := sensor.LoadGeneric(spec, m.events, m.opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Call, err)
	}
	return &loadedHook{id: id, obj: g, info: &info}, nil
}

// Unload detaches a policy's hooks.
func (m *Manager) Unload(policy string) error {
	m.mu.Lock()
	lp, ok := m.policies[policy]
	if ok {
		delete(m.policies, policy)
		for _, h := range lp.hooks {
			delete(m.hooks, h.id)
		}
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("policy %q is not loaded", policy)
	}
	return lp.close()
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
			ps.Hooks = append(ps.Hooks, HookStatus{Call: h.info.decl.Call, Mechanism: h.info.mechanism, Stats: st})
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close unloads everything.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for name, lp := range m.policies {
		errs = append(errs, lp.close())
		delete(m.policies, name)
	}
	clear(m.hooks)
	return errors.Join(errs...)
}

func (lp *loadedPolicy) close() error {
	var errs []error
	for _, h := range lp.hooks {
		errs = append(errs, h.obj.Close())
	}
	lp.hooks = nil
	return errors.Join(errs...)
}

// RateLimited counts the events rate limits held back.
func (m *Manager) RateLimited() uint64 { return m.rateLimited.Load() }

// limited applies a selector's rate limit to a record. The limit is kept
// in user space: the kernel still sends every matching record.
func (m *Manager) limited(info *hookInfo, g *observer.Generic) bool {
	if int(g.Selector) >= len(info.limits) || info.limits[g.Selector].period <= 0 {
		return false
	}
	rl := info.limits[g.Selector]
	k := limitKey{hook: g.HookID, sel: g.Selector}
	switch rl.scope {
	case "process":
		k.id = g.Pid
	case "global":
	default:
		k.id = g.Tid
	}
	m.limitMu.Lock()
	defer m.limitMu.Unlock()
	if g.Ktime < m.until[k] {
		m.rateLimited.Add(1)
		return true
	}
	if len(m.until) >= maxLimitKeys {
		for key, until := range m.until {
			if until <= g.Ktime {
				delete(m.until, key)
			}
		}
		if len(m.until) >= maxLimitKeys {
			clear(m.until) // all live: forget them rather than grow
		}
	}
	m.until[k] = g.Ktime + uint64(rl.period.Nanoseconds())
	return false
}

// Event turns a hook record into a process_kprobe event without its
// process, which the caller adds. It returns false for a record that makes
// no event: its hook is no longer loaded, or a rate limit holds it back.
func (m *Manager) Event(g *observer.Generic) (*api.ProcessKprobe, bool) {
	m.mu.RLock()
	info := m.hooks[g.HookID]
	m.mu.RUnlock()
	if info == nil || m.limited(info, g) {
		return nil, false
	}
	ev := &api.ProcessKprobe{
		FunctionName: info.decl.Call,
		PolicyName:   info.decl.Policy,
		Message:      info.decl.Message,
		Tags:         info.decl.Tags,
		Mechanism:    info.mechanism,
		Action:       api.KprobeAction_KPROBE_ACTION_POST,
	}
	switch {
	case g.Actions&sensor.ActSigkill != 0:
		ev.Action = api.KprobeAction_KPROBE_ACTION_SIGKILL
	case g.Actions&sensor.ActSignal != 0:
		ev.Action = api.KprobeAction_KPROBE_ACTION_SIGNAL
	}
	str := 0
	for i, a := range info.argOrder {
		var arg *api.KprobeArgument
		if isIntType(a.Type) || a.Type == "fd" {
			arg = intArg(a.Type, g.Ints[i])
		}
		if !isIntType(a.Type) {
			path, flags := g.Strs[str&1], g.StrFlags[str&1]
			str++
			switch a.Type {
			case "fd":
			case "file":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: validUTF8(path), Flags: pathFlags(flags)}}}
			case "path", "dentry":
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Path: validUTF8(path), Flags: pathFlags(flags)}}}
			default:
				arg = &api.KprobeArgument{Arg: &api.KprobeArgument_StringArg{StringArg: validUTF8(path)}}
			}
		}
		arg.Label = a.Label
		ev.Args = append(ev.Args, arg)
	}
	if info.decl.Return {
		ev.Return = &api.KprobeArgument{Arg: &api.KprobeArgument_LongArg{LongArg: g.Ret}}
	}
	return ev, true
}
