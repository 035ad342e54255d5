// Package container keeps Docker container metadata (name, image, compose labels)
// for the container ids the agent reads from cgroups.
//
// A Watcher follows the Docker events stream to keep an in-memory map, and falls back
// to a bounded inspect call for ids it has not seen yet: a container's first process
// can exec before its "start" event reaches the agent. Docker being absent or
// restarted is normal; the Watcher then serves what it knows and reconnects quietly.
package container

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
)

// Compose labels set by docker-compose (v1 and v2) on the containers it creates.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
)

// Info is what the agent attaches to events of processes in a container.
type Info struct {
	ID      string
	Name    string // without Docker's leading "/"
	Image   string // as the user named it, e.g. "nginx:1.27"
	ImageID string // "sha256:..."
	Started time.Time
	// ComposeProject and ComposeService are empty for containers compose did not create.
	ComposeProject string
	ComposeService string
}

// Options tune a Watcher. Zero values take the defaults documented per field.
type Options struct {
	// SocketPath is the Docker endpoint: a unix socket path ("/var/run/docker.sock")
	// or a URL ("unix:///run/docker.sock", "tcp://127.0.0.1:2375"). Empty: the
	// DOCKER_HOST environment variable, else unix:///var/run/docker.sock.
	SocketPath string
	// InspectTimeout bounds the inspect call of a Lookup miss (default 500ms): the
	// caller is on the event path and must not stall on a slow daemon.
	InspectTimeout time.Duration
	// MissWait bounds how long a Lookup miss waits, for the inspect call or
	// for the events stream to name the container, whichever comes first
	// (default 1s; the caller's context may end it sooner).
	MissWait time.Duration
	// NegativeTTL is how long an id that Docker does not know is answered
	// "unknown" without asking again (default 5s). A failed or timed-out
	// inspect is not remembered: on a busy host it says nothing about the id.
	NegativeTTL time.Duration
	// ForgetAfter is how long a container that died or was removed stays in the
	// map, for the events of its processes still in flight (default 60s).
	ForgetAfter time.Duration
	// MinBackoff and MaxBackoff bound the reconnection delay, which doubles after
	// every failed attempt (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// MaxInspects caps concurrent inspect calls of Lookup misses (default 4).
	MaxInspects int
}

func (o Options) withDefaults() Options {
	if o.InspectTimeout <= 0 {
		o.InspectTimeout = 500 * time.Millisecond
	}
	if o.MissWait <= 0 {
		o.MissWait = time.Second
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 5 * time.Second
	}
	if o.ForgetAfter <= 0 {
		o.ForgetAfter = time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxInspects <= 0 {
		o.MaxInspects = 4
	}
	return o
}

// clientOptions picks the endpoint: an explicit one wins over DOCKER_HOST.
func (o Options) clientOptions() []client.Opt {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	switch {
	case o.SocketPath == "":
		opts = append([]client.Opt{client.FromEnv}, opts...)
	case strings.Contains(o.SocketPath, "://"):
		opts = append(opts, client.WithHost(o.SocketPath))
	default:
		opts = append(opts, client.WithHost("unix://"+o.SocketPath))
	}
	return opts
}

// streamGrace is how long a Lookup miss still waits for the events stream
// after Docker answered that it does not know the id.
const streamGrace = 250 * time.Millisecond

// maxNegative bounds the negative cache, so a flood of distinct unknown ids cannot
// grow memory; past it, unknown ids are simply not remembered.
const maxNegative = 4096

// entry is a known container. goneAt is set when it died or was removed; the entry
// is forgotten ForgetAfter later unless the container starts again.
type entry struct {
	info   Info
	goneAt time.Time
}

// Stats are the Watcher's counters, for metrics and the status command.
type Stats struct {
	Connected  bool   // the running containers are listed and the events stream followed
	Containers int    // containers in the map, including recently removed ones
	Lookups    uint64 // Lookup calls
	Misses     uint64 // Lookup calls that found nothing
	Inspects   uint64 // inspect calls made by Lookup misses
	// InspectErrors counts inspect calls that failed for a reason other than the
	// container not existing (timeouts, a daemon going away).
	InspectErrors uint64
}

// Watcher keeps container metadata current. Create it with New, run Run in a
// goroutine, and call Lookup from anywhere.
type Watcher struct {
	log        zerolog.Logger
	opts       Options
	clientOpts []client.Opt

	// cli is the client of the live session, nil while disconnected: Lookup only
	// inspects when a daemon is known to be there.
	cli atomic.Pointer[client.Client]
	// following is true once a session has listed the running containers and
	// follows the events stream: what Stats reports as Connected.
	following atomic.Bool

	mu       sync.RWMutex
	entries  map[string]*entry
	negative map[string]time.Time // id -> answer "unknown" until then
	// changed is closed, and replaced, when a container is added: Lookup
	// misses wait on it for the events stream.
	changed chan struct{}

	inspectGroup singleflight.Group
	inspectSlots chan struct{}

	lookups, misses, inspects, inspectErrors atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a Watcher; it does not connect until Run.
func New(log zerolog.Logger, opts Options) *Watcher {
	opts = opts.withDefaults()
	return &Watcher{
		log:          log.With().Str("component", "container").Logger(),
		opts:         opts,
		clientOpts:   opts.clientOptions(),
		entries:      make(map[string]*entry),
		negative:     make(map[string]time.Time),
		changed:      make(chan struct{}),
		inspectSlots: make(chan struct{}, opts.MaxInspects),
		closed:       make(chan struct{}),
	}
}

// Close stops Run (which then returns nil) and stops Lookup from calling Docker.
// Lookup keeps answering from the map.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { close(w.closed) })
	return nil
}

// Lookup returns the container with this full id. A miss in the map is answered by
// an inspect call bounded by Options.InspectTimeout when Docker is connected, or
// by the events stream catching up, whichever comes first, for at most
// Options.MissWait;
// ids Docker does not know are remembered for Options.NegativeTTL.
func (w *Watcher) Lookup(ctx context.Context, id string) (Info, bool) {
	w.lookups.Add(1)
	info, ok := w.lookup(ctx, id)
	if !ok {
		w.misses.Add(1)
	}
	return info, ok
}

func (w *Watcher) lookup(ctx context.Context, id string) (Info, bool) {
	if id == "" {
		return Info{}, false
	}
	info, known, negative, changed := w.fromMap(id, time.Now())
	if known {
		return info, true
	}
	if negative {
		return Info{}, false
	}
	cli := w.cli.Load()
	if cli == nil || w.isClosed() {
		return Info{}, false
	}
	// Concurrent misses for one id share one call; the caller's cancellation does
	// not abort the call the others wait on, the timeout bounds it.
	inspected := w.inspectGroup.DoChan(id, func() (any, error) {
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.InspectTimeout)
		defer cancel()
		return w.inspectForLookup(ictx, cli, id), nil
	})
	// The events stream may be behind (a busy host): its create event names
	// the container even when the inspect is slow, or comes after a
	// short-lived container was removed. So wait for whichever comes first,
	// for at most MissWait.
	ctx, cancel := context.WithTimeout(ctx, w.opts.MissWait)
	defer cancel()
	var graceDone <-chan time.Time
	for {
		select {
		case r := <-inspected:
			res := r.Val.(lookupResult)
			if res.found {
				return res.info, true
			}
			inspected = nil
			if res.unknown {
				// Only a lagging stream can still tell, and its create event
				// came before anything this id ran: a short grace instead of
				// the whole wait, so that ids of other runtimes' containers
				// cost little. A failed inspect says nothing: wait on.
				grace := time.NewTimer(streamGrace)
				defer grace.Stop()
				graceDone = grace.C
			}
		case <-changed:
			info, known, _, next := w.fromMap(id, time.Now())
			if known {
				return info, true
			}
			changed = next
		case <-graceDone:
			return Info{}, false
		case <-ctx.Done():
			return Info{}, false
		case <-w.closed:
			return Info{}, false
		}
	}
}

// fromMap answers from the map: the container if known, whether it is in the
// negative cache, and a channel closed at the map's next change.
func (w *Watcher) fromMap(id string, now time.Time) (info Info, known, negative bool, changed <-chan struct{}) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if e, ok := w.entries[id]; ok {
		return e.info, true, false, nil
	}
	until, neg := w.negative[id]
	return Info{}, false, neg && now.Before(until), w.changed
}

// lookupResult is an inspect call's answer: found, unknown to Docker, or
// neither (the call failed).
type lookupResult struct {
	info    Info
	found   bool
	unknown bool
}

func (w *Watcher) inspectForLookup(ctx context.Context, cli *client.Client, id string) lookupResult {
	select {
	case w.inspectSlots <- struct{}{}:
		defer func() { <-w.inspectSlots }()
	case <-ctx.Done():
		w.inspectErrors.Add(1)
		return lookupResult{}
	}
	w.inspects.Add(1)
	resp, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		if client.IsErrNotFound(err) {
			w.rememberUnknown(id, w.opts.NegativeTTL)
			return lookupResult{unknown: true}
		}
		w.inspectErrors.Add(1)
		w.log.Debug().Err(err).Str("id", id).Msg("inspecting container")
		return lookupResult{}
	}
	info, running, ok := infoFromInspect(resp)
	// Docker resolves names and id prefixes too; only the exact id is an answer.
	if !ok || info.ID != id {
		w.rememberUnknown(id, w.opts.NegativeTTL)
		return lookupResult{unknown: true}
	}
	w.storeFromLookup(info, running)
	return lookupResult{info: info, found: true}
}

// storeFromLookup adds an inspected container unless the events stream got there
// first: the stream is newer than an inspect that raced with it, and an id it saw
// destroyed is tombstoned in the negative cache.
func (w *Watcher) storeFromLookup(info Info, running bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.entries[info.ID]; ok {
		return
	}
	if until, ok := w.negative[info.ID]; ok && now.Before(until) {
		return
	}
	e := &entry{info: info}
	if !running {
		e.goneAt = now
	}
	w.addLocked(e)
}

// addLocked stores e and wakes the Lookup calls waiting for a container; the
// caller holds mu for writing.
func (w *Watcher) addLocked(e *entry) {
	w.entries[e.info.ID] = e
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *Watcher) rememberUnknown(id string, ttl time.Duration) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.negative) >= maxNegative {
		w.sweepNegativeLocked(now)
		if len(w.negative) >= maxNegative {
			return
		}
	}
	w.negative[id] = now.Add(ttl)
}

// Stats returns a snapshot of the counters.
func (w *Watcher) Stats() Stats {
	w.mu.RLock()
	n := len(w.entries)
	w.mu.RUnlock()
	return Stats{
		Connected:     w.following.Load(),
		Containers:    n,
		Lookups:       w.lookups.Load(),
		Misses:        w.misses.Load(),
		Inspects:      w.inspects.Load(),
		InspectErrors: w.inspectErrors.Load(),
	}
}

func (w *Watcher) isClosed() bool {
	select {
	case <-w.closed:
		return true
	default:
		return false
	}
}

// sweep forgets containers gone for longer than ForgetAfter and expired negatives.
func (w *Watcher) sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, e := range w.entries {
		if !e.goneAt.IsZero() && now.Sub(e.goneAt) >= w.opts.ForgetAfter {
			delete(w.entries, id)
		}
	}
	w.sweepNegativeLocked(now)
}

func (w *Watcher) sweepNegativeLocked(now time.Time) {
	for id, until := range w.negative {
		if !now.Before(until) {
			delete(w.negative, id)
		}
	}
}
