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

// Subscription is one subscriber's queue: of events (C), or of batches of
// events (Batches) for a subscriber that handles many at a time.
type Subscription struct {
	c chan *Event
	// b is a batch subscriber's queue; pending counts the events in it
	// (given back by Done), bounded by size
	b       chan []*Event
	pending atomic.Int64
	size    int
	match   func(*api.GetEventsResponse) bool
	name    string
	since   time.Time
	queued  atomic.Uint64
	dropped atomic.Uint64
}

// C delivers the events. It is closed when the bus closes; nil for a batch
// subscriber.
func (s *Subscription) C() <-chan *Event { return s.c }

// Batches delivers a batch subscriber's events: each batch as they were
// published together, the events that matched. It is closed when the bus
// closes. A batch is shared with other subscribers: no one may modify it.
func (s *Subscription) Batches() <-chan []*Event { return s.b }

// Done gives back the room of n events taken off Batches.
func (s *Subscription) Done(n int) { s.pending.Add(-int64(n)) }

// Dropped is how many events this subscriber lost to a full queue.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// length is the events waiting in the queue.
func (s *Subscription) length() int {
	if s.b != nil {
		return int(s.pending.Load())
	}
	return len(s.c)
}

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
	return b.add(&Subscription{c: make(chan *Event, size), size: size, match: match, name: name, since: time.Now()})
}

// SubscribeBatches adds a subscriber, named name, that receives events in
// batches (Batches) with room for size events: one channel operation, and
// at most one wake-up, per batch published instead of per event.
func (b *Bus) SubscribeBatches(name string, size int, match func(*api.GetEventsResponse) bool) *Subscription {
	// each batch holds one event or more: size batches are never short of room
	return b.add(&Subscription{b: make(chan []*Event, size), size: size, match: match, name: name, since: time.Now()})
}

func (b *Bus) add(s *Subscription) *Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.close()
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

func (s *Subscription) close() {
	if s.b != nil {
		close(s.b)
	} else {
		close(s.c)
	}
}

// Unsubscribe removes s; its channel is not closed (the subscriber stops reading).
func (b *Bus) Unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}

// Publish hands ev to every subscriber that wants it. Events are shared: no
// one may modify them after publishing.
func (b *Bus) Publish(ev *Event) { b.PublishBatch([]*Event{ev}) }

// PublishBatch hands evs, in order, to every subscriber that wants them: a
// batch subscriber gets them in one batch. Neither evs nor its events may
// be modified after publishing.
func (b *Bus) PublishBatch(evs []*Event) {
	if len(evs) == 0 {
		return
	}
	b.published.Add(uint64(len(evs)))
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.b != nil {
			b.sendBatch(s, evs)
			continue
		}
		for _, ev := range evs {
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
}

// sendBatch queues what of evs s wants and has room for, and counts the
// rest as dropped.
func (b *Bus) sendBatch(s *Subscription, evs []*Event) {
	if s.match != nil {
		var kept []*Event
		for i, ev := range evs {
			if s.match(ev.GetEventsResponse) {
				if kept == nil {
					kept = make([]*Event, 0, len(evs)-i)
				}
				kept = append(kept, ev)
			}
		}
		if evs = kept; len(evs) == 0 {
			return
		}
	}
	n := len(evs)
	// the room left; what does not fit is dropped, the oldest kept
	room := int64(s.size) - s.pending.Add(int64(n)) + int64(n)
	if room < int64(n) {
		keep := max(room, 0)
		s.pending.Add(keep - int64(n))
		lost := uint64(int64(n) - keep)
		s.dropped.Add(lost)
		b.dropped.Add(lost)
		if evs = evs[:keep]; len(evs) == 0 {
			return
		}
		n = len(evs)
	}
	select {
	case s.b <- evs:
		s.queued.Add(uint64(n))
	default:
		// not reached: the channel holds size batches of one event or more
		s.pending.Add(-int64(n))
		s.dropped.Add(uint64(n))
		b.dropped.Add(uint64(n))
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
			Length: s.length(), Capacity: s.size,
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
		s.close()
	}
	clear(b.subs)
}
