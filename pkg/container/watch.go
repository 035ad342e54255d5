package container

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

const (
	// pingTimeout bounds the connection check of each attempt.
	pingTimeout = 5 * time.Second
	// syncInspectTimeout bounds one inspect made while listing or handling an
	// event: nobody waits on it, but the events behind it do.
	syncInspectTimeout = 5 * time.Second
)

// Run connects to Docker, loads the running containers and follows the events
// stream until ctx is cancelled or Close is called; then it returns nil. A missing
// or failing daemon is retried with exponential backoff, logging one warning per
// outage and the retries at debug level only.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.sweepLoop(ctx)
	}()
	defer wg.Wait()

	backoff := w.opts.MinBackoff
	outage := false // a warning for the current outage was logged
	for {
		connected, err := w.session(ctx, outage)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = w.opts.MinBackoff
			outage = false
		}
		if !outage {
			w.log.Warn().Err(err).Dur("retry_max", w.opts.MaxBackoff).
				Msg("docker API unavailable; container metadata is missing until it is back, retrying quietly")
			outage = true
		} else {
			w.log.Debug().Err(err).Dur("retry_in", backoff).Msg("docker API still unavailable")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

// sweepLoop runs the forgetting of removed containers and expired negatives even
// while Docker is away.
func (w *Watcher) sweepLoop(ctx context.Context) {
	interval := min(max(w.opts.ForgetAfter/4, 50*time.Millisecond), 10*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.sweep(now)
		}
	}
}

// session is one connection: ping, subscribe to events, list, then apply events
// until the stream fails. connected reports whether the daemon answered, which
// resets the backoff. It always returns a non-nil error unless ctx is done.
func (w *Watcher) session(ctx context.Context, recovering bool) (connected bool, err error) {
	cli, err := client.NewClientWithOpts(w.clientOpts...)
	if err != nil {
		return false, fmt.Errorf("creating docker client: %w", err)
	}
	defer cli.Close()

	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	ping, err := cli.Ping(pctx)
	cancel()
	if err != nil {
		return false, fmt.Errorf("pinging docker at %s: %w", cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersionPing(ping)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Events returns once the daemon answered the subscription, so nothing that
	// happens after the list below is missed; events racing with the list are
	// applied after it, and applying them twice is harmless.
	msgs, errs := cli.Events(sctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionCreate)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(events.ActionRename)),
	)})

	w.cli.Store(cli)
	defer w.cli.Store(nil)

	n, err := w.resync(sctx, cli)
	if err != nil {
		return true, err
	}
	ev := w.log.Info().Str("host", cli.DaemonHost()).Str("api_version", cli.ClientVersion()).Int("containers", n)
	if recovering {
		ev.Msg("docker API is back; following container events")
	} else {
		ev.Msg("connected to docker; following container events")
	}
	w.following.Store(true)
	defer w.following.Store(false)

	for {
		select {
		case m := <-msgs:
			w.apply(sctx, cli, m)
		case err := <-errs:
			if err == nil {
				err = errors.New("stream closed")
			}
			return true, fmt.Errorf("reading docker events: %w", err)
		case <-ctx.Done():
			return true, nil
		}
	}
}

// resync replaces the map's view of running containers with the daemon's, and
// starts the forgetting clock of those that vanished while disconnected.
func (w *Watcher) resync(ctx context.Context, cli *client.Client) (int, error) {
	w.mu.RLock()
	before := make(map[string]bool, len(w.entries))
	for id, e := range w.entries {
		before[id] = e.goneAt.IsZero()
	}
	w.mu.RUnlock()

	list, err := cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing containers: %w", err)
	}
	seen := make(map[string]bool, len(list))
	for _, c := range list {
		seen[c.ID] = true
		info, running, err := w.inspect(ctx, cli, c.ID)
		switch {
		case err == nil:
			w.upsert(info, running)
		case client.IsErrNotFound(err):
			// Removed since the list; its destroy event follows.
		default:
			w.log.Debug().Err(err).Str("id", c.ID).Msg("inspecting listed container; using list data")
			w.upsert(infoFromSummary(c), true)
		}
	}
	now := time.Now()
	w.mu.Lock()
	for id, wasRunning := range before {
		if e, ok := w.entries[id]; ok && wasRunning && !seen[id] && e.goneAt.IsZero() {
			e.goneAt = now
		}
	}
	w.mu.Unlock()
	return len(list), nil
}

func (w *Watcher) inspect(ctx context.Context, cli *client.Client, id string) (Info, bool, error) {
	ictx, cancel := context.WithTimeout(ctx, syncInspectTimeout)
	defer cancel()
	resp, err := cli.ContainerInspect(ictx, id)
	if err != nil {
		return Info{}, false, fmt.Errorf("inspecting container %s: %w", id, err)
	}
	info, running, ok := infoFromInspect(resp)
	if !ok {
		return Info{}, false, fmt.Errorf("inspecting container %s: answer without an id", id)
	}
	return info, running, nil
}

// apply updates the map from one event.
func (w *Watcher) apply(ctx context.Context, cli *client.Client, m events.Message) {
	id := m.Actor.ID
	if m.Type != events.ContainerEventType || id == "" {
		return
	}
	switch m.Action {
	case events.ActionCreate:
		// The name is known before the container's first process runs: record
		// it from the event itself first, so that even a container that is
		// gone a moment later (docker run --rm) is named, then add the image
		// id from an inspect; its start event adds the start time.
		w.upsert(infoFromEvent(m), true)
		if info, running, err := w.inspect(ctx, cli, id); err == nil {
			w.upsert(info, running)
		}
	case events.ActionStart:
		info, running, err := w.inspect(ctx, cli, id)
		switch {
		case err == nil:
			w.upsert(info, running)
		case client.IsErrNotFound(err):
			// Already removed; its destroy event follows.
		default:
			if ctx.Err() != nil {
				return
			}
			w.log.Debug().Err(err).Str("id", id).Msg("using start event data")
			w.upsert(infoFromEvent(m), true)
		}
	case events.ActionDie:
		w.markGone(id, false)
	case events.ActionDestroy:
		w.markGone(id, true)
	case events.ActionRename:
		name := m.Actor.Attributes["name"]
		w.mu.Lock()
		e, ok := w.entries[id]
		if ok && name != "" {
			e.info.Name = name
		}
		w.mu.Unlock()
		if !ok {
			if info, running, err := w.inspect(ctx, cli, id); err == nil {
				w.upsert(info, running)
			}
		}
	}
}

// upsert records a container from the daemon; a running one is no longer gone and
// no longer unknown.
func (w *Watcher) upsert(info Info, running bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	e := &entry{info: info}
	if !running {
		e.goneAt = now
		if old, ok := w.entries[info.ID]; ok && !old.goneAt.IsZero() {
			e.goneAt = old.goneAt
		}
	} else {
		delete(w.negative, info.ID)
	}
	w.addLocked(e)
}

// markGone starts the forgetting clock of a container that died or was destroyed.
// A destroyed id the map never held is tombstoned, so that an inspect racing with
// the destroy cannot bring it back.
func (w *Watcher) markGone(id string, destroyed bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.entries[id]; ok {
		if destroyed || e.goneAt.IsZero() {
			e.goneAt = now
		}
		return
	}
	if destroyed && len(w.negative) < maxNegative {
		w.negative[id] = now.Add(w.opts.ForgetAfter)
	}
}
