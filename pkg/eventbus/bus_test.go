package eventbus

import (
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

func exec(bin string) *Event {
	return NewEvent(&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessExec{
		ProcessExec: &api.ProcessExec{Process: &api.Process{Binary: bin}}}}, nil, nil)
}

func TestSlowSubscriberDropsOnlyItsOwn(t *testing.T) {
	b := New()
	slow := b.Subscribe(2, nil)
	fast := b.Subscribe(100, nil)
	for i := 0; i < 10; i++ {
		b.Publish(exec("/bin/true"))
	}
	if got := len(fast.C()); got != 10 {
		t.Fatalf("fast subscriber got %d events, want 10", got)
	}
	if got := slow.Dropped(); got != 8 {
		t.Fatalf("slow subscriber dropped %d, want 8", got)
	}
	if st := b.Stats(); st.Dropped != 8 || st.Published != 10 || st.Subscribers != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMatchFiltersBeforeQueueing(t *testing.T) {
	b := New()
	s := b.Subscribe(1, func(ev *api.GetEventsResponse) bool {
		return ev.GetProcessExec().GetProcess().GetBinary() == "/bin/cat"
	})
	b.Publish(exec("/bin/true"))
	b.Publish(exec("/bin/cat"))
	b.Publish(exec("/bin/true"))
	if s.Dropped() != 0 {
		t.Fatalf("dropped %d events that did not match", s.Dropped())
	}
	if ev := <-s.C(); ev.GetProcessExec().GetProcess().GetBinary() != "/bin/cat" {
		t.Fatalf("got %v", ev)
	}
}

func TestCloseEndsSubscribers(t *testing.T) {
	b := New()
	s := b.Subscribe(1, nil)
	b.Close()
	if _, ok := <-s.C(); ok {
		t.Fatal("channel open after Close")
	}
	late := b.Subscribe(1, nil)
	if _, ok := <-late.C(); ok {
		t.Fatal("subscription after Close is open")
	}
	b.Publish(exec("/bin/true")) // must not panic on closed channels
}

// TestSubscriberStats: each subscriber's own counters, by name.
func TestSubscriberStats(t *testing.T) {
	b := New()
	slow := b.SubscribeAs("slow", 2, nil)
	b.SubscribeAs("fast", 100, nil)
	for range 5 {
		b.Publish(exec("/bin/true"))
	}
	<-slow.C()
	st := b.Stats()
	if len(st.Each) != 2 || st.Each[0].Name != "slow" || st.Each[1].Name != "fast" {
		t.Fatalf("subscribers %+v", st.Each)
	}
	if s := st.Each[0]; s.Queued != 2 || s.Dropped != 3 || s.Length != 1 || s.Capacity != 2 {
		t.Errorf("slow: %+v", s)
	}
	if s := st.Each[1]; s.Queued != 5 || s.Dropped != 0 || s.Length != 5 || s.Capacity != 100 {
		t.Errorf("fast: %+v", s)
	}
	if st.Dropped != 3 || st.Published != 5 {
		t.Errorf("bus: %+v", st)
	}
}

// TestBatchSubscriber: a batch published together arrives as one batch,
// in order, filtered by match; what does not fit the queue is dropped
// (the newest), counted, and the room comes back with Done.
func TestBatchSubscriber(t *testing.T) {
	b := New()
	all := b.SubscribeBatches("all", 5, nil)
	cats := b.SubscribeBatches("cats", 5, func(ev *api.GetEventsResponse) bool {
		return ev.GetProcessExec().GetProcess().GetBinary() == "/bin/cat"
	})
	one := b.Subscribe(10, nil)
	bins := []string{"/bin/true", "/bin/cat", "/bin/sh", "/bin/cat"}
	var evs []*Event
	for _, bin := range bins {
		evs = append(evs, exec(bin))
	}
	b.PublishBatch(evs)
	if got := <-all.Batches(); len(got) != 4 || got[1].GetProcessExec().GetProcess().GetBinary() != "/bin/cat" || got[2] != evs[2] {
		t.Fatalf("all got %v", got)
	}
	if got := <-cats.Batches(); len(got) != 2 || got[0] != evs[1] || got[1] != evs[3] {
		t.Fatalf("cats got %v", got)
	}
	if len(one.C()) != 4 {
		t.Fatalf("the per-event subscriber got %d events, want 4", len(one.C()))
	}
	// all: 4 events not Done yet, room for 1 of the next 4
	b.PublishBatch([]*Event{exec("/bin/a"), exec("/bin/b"), exec("/bin/c"), exec("/bin/d")})
	if got := <-all.Batches(); len(got) != 1 || got[0].GetProcessExec().GetProcess().GetBinary() != "/bin/a" {
		t.Fatalf("all got %v, want only /bin/a", got)
	}
	if all.Dropped() != 3 {
		t.Fatalf("all dropped %d, want 3", all.Dropped())
	}
	st := b.Stats()
	if s := st.Each[0]; s.Name != "all" || s.Queued != 5 || s.Dropped != 3 || s.Length != 5 || s.Capacity != 5 {
		t.Errorf("all: %+v", s)
	}
	if st.Dropped != 3 || st.Published != 8 {
		t.Errorf("bus: %+v", st)
	}
	// a full queue drops a whole batch; Done gives the room back
	b.PublishBatch([]*Event{exec("/bin/e")})
	all.Done(5)
	b.PublishBatch([]*Event{exec("/bin/f")})
	if got := <-all.Batches(); len(got) != 1 || got[0].GetProcessExec().GetProcess().GetBinary() != "/bin/f" {
		t.Fatalf("all got %v, want /bin/f", got)
	}
	if all.Dropped() != 4 || b.Stats().Each[0].Length != 1 {
		t.Fatalf("all dropped %d (want 4), stats %+v", all.Dropped(), b.Stats().Each[0])
	}
	b.Close()
	if _, ok := <-all.Batches(); ok {
		t.Fatal("batches open after Close")
	}
	if late := b.SubscribeBatches("late", 1, nil); late.Batches() == nil {
		t.Fatal("no channel for a subscription after Close")
	} else if _, ok := <-late.Batches(); ok {
		t.Fatal("subscription after Close is open")
	}
}
