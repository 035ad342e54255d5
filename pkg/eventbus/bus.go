// Package eventbus fans events out to subscribers, each with its own bounded
// queue: a slow subscriber loses its own events (counted) and never slows
// the agent or the other subscribers.
package eventbus

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/eventwire"
)

// Event is one published event: the message, and its wire bytes built at
// most once however many subscribers send it.
type Event struct {
	*api.GetEventsResponse
	// process and parent are the wire bytes of the event's process and
	// parent, marshalled once per process (nil: marshalled with the event)
	process, parent []byte

	once sync.Once
	wire []byte
	err  error
}

// NewEvent wraps msg. process and parent are the wire bytes of its
// process and parent (eventwire.Process), or nil; msg must not be modified
// once published.
func NewEvent(msg *api.GetEventsResponse, process, parent []byte) *Event {
	return &Event{GetEventsResponse: msg, process: process, parent: parent}
}

// Wire is the event's protobuf encoding, proto.Marshal's bytes, built on
// the first call. The bytes are shared: no one may modify them.
func (e *Event) Wire() ([]byte, error) {
	e.once.Do(func() {
		e.wire, e.err = eventwire.Marshal(nil, e.GetEventsResponse, e.process, e.parent)
	})
	return e.wire, e.err
}

// Subscription is one subscriber's queue.
type Subscription struct {
	c       chan *Event
	match   func(*api.GetEventsResponse) bool
	name    string
	since   time.Time
	queued  atomic.Uint64
	dropped atomic.Uint64
}

// C delivers the events. It is closed when the bus closes.
func (s *Subscription) C() <-chan *Event { return s.c }

// Dropped is how many events this subscriber lost to a full queue.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Bus is safe for concurrent use.
type Bus struct {
	mu        sync.RWMutex
	subs      map[*Subscription]struct{}
	closed    bool
	published atomic.Uint64
	dropped   atomic.Uint64
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: make(map[*Subscription]struct{})} }

// Subscribe adds a subscriber with a queue of size events that receives the
// events match accepts (all events when match is nil).
func (b *Bus) Subscribe(size int, match func(*api.GetEventsResponse) bool) *Subscription {
	return b.SubscribeAs("", size, match)
}

// SubscribeAs is Subscribe with a name for the subscriber's counters.
func (b *Bus) SubscribeAs(name string, size int, match func(*api.GetEventsResponse) bool) *Subscription {
	s := &Subscription{c: make(chan *Event, size), match: match, name: name, since: time.Now()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Unsubscribe removes s; its channel is not closed (the subscriber stops reading).
func (b *Bus) Unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}

// Publish hands ev to every subscriber that wants it. Events are shared: no
// one may modify them after publishing.
func (b *Bus) Publish(ev *Event) {
	b.published.Add(1)
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.match != nil && !s.match(ev.GetEventsResponse) {
			continue
		}
		select {
		case s.c <- ev:
			s.queued.Add(1)
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
}

// Stats are the bus counters.
type Stats struct {
	Published   uint64
	Dropped     uint64
	Subscribers int
	// Each is every current subscriber's counters, oldest first.
	Each []SubscriberStats
}

// SubscriberStats are one subscriber's counters.
type SubscriberStats struct {
	Name  string
	Since time.Time
	// Queued events were put in its queue; Dropped ones found it full.
	Queued, Dropped uint64
	// Length events wait in its queue of Capacity.
	Length, Capacity int
}

// Stats reads the counters.
func (b *Bus) Stats() Stats {
	b.mu.RLock()
	each := make([]SubscriberStats, 0, len(b.subs))
	for s := range b.subs {
		each = append(each, SubscriberStats{
			Name: s.name, Since: s.since, Queued: s.queued.Load(), Dropped: s.dropped.Load(),
			Length: len(s.c), Capacity: cap(s.c),
		})
	}
	b.mu.RUnlock()
	slices.SortFunc(each, func(x, y SubscriberStats) int { return x.Since.Compare(y.Since) })
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load(), Subscribers: len(each), Each: each}
}

// Close closes every subscriber's channel; later subscriptions get a closed channel.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.c)
	}
	clear(b.subs)
}
