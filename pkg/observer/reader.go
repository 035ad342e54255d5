package observer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"
)

// Reader moves raw records from the kernel's ring buffer into a bounded
// queue. It never blocks on a full queue: it drops the records and counts
// them, so a stalled consumer shows up as a number instead of stalling the
// kernel side (whose own drops the sensor counts).
//
// Records go to the queue in batches: all those the ring buffer holds when
// the reader gets to it, and those that come within linger after, up to
// maxBatch. At high rates a hand-off per record (a channel send, often a
// wake-up of the decoding goroutine, the gRPC sender, its writer, tetra)
// cost more than decoding the record.
type Reader struct {
	rd    *ringbuf.Reader
	queue chan [][]byte
	// limit bounds the records queued (pending) and not yet Done
	limit   int64
	pending atomic.Int64
	log     zerolog.Logger
	records atomic.Uint64
	dropped atomic.Uint64
}

// maxBatch is the most records handed over at once.
const maxBatch = 256

// NewReader opens a reader on the ring buffer map with a queue of queueLen records.
func NewReader(events *ebpf.Map, queueLen int, log zerolog.Logger) (*Reader, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	return &Reader{rd: rd, queue: make(chan [][]byte, queueLen), limit: int64(queueLen), log: log}, nil
}

// Queue is where batches of raw records come out; it is closed when Run
// returns. The consumer calls Done with each batch's length once it has
// handled it.
func (r *Reader) Queue() <-chan [][]byte { return r.queue }

// Done gives back the room of n handled records.
func (r *Reader) Done(n int) { r.pending.Add(-int64(n)) }

// Records is the number of records read from the ring buffer.
func (r *Reader) Records() uint64 { return r.records.Load() }

// Dropped is the number of records dropped because the queue was full.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Run reads until ctx is done or the reader is closed. Every record it
// read is queued (or counted as dropped) before it returns and closes the
// queue.
func (r *Reader) Run(ctx context.Context) error {
	defer close(r.queue)
	// closing releases the ring's memory, which AvailableBytes reads
	// without the reader's lock: the two are kept apart here
	var closeMu sync.Mutex
	closed := false
	stop := context.AfterFunc(ctx, func() {
		closeMu.Lock()
		defer closeMu.Unlock()
		closed = true
		r.rd.Close()
	})
	defer stop()
	more := func() bool {
		closeMu.Lock()
		defer closeMu.Unlock()
		return !closed && r.rd.AvailableBytes() > 0
	}
	var rec ringbuf.Record
	var batch [][]byte
	// slab holds the batch's bytes: one allocation for many records
	var slab []byte
	// bounded: a batch is held only while the ring buffer shows more
	// data, but what it shows may be a record discarded by its writer;
	// the batch then goes out after at most batchWait, not with the next
	// record whenever that comes
	bounded := false
	// lingered: this batch already waited linger for more records
	lingered := false
	for {
		if len(batch) > 0 && !bounded {
			r.rd.SetDeadline(time.Now().Add(batchWait))
			bounded = true
		}
		if err := r.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				r.send(batch)
				batch = nil
				r.rd.SetDeadline(time.Time{})
				bounded = false
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				// stopped: what was read goes out, not with the reader
				if len(batch) > 0 {
					r.send(batch)
				}
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		r.records.Add(1)
		if len(slab)+len(rec.RawSample) > cap(slab) {
			slab = make([]byte, 0, max(64<<10, len(rec.RawSample)))
		}
		start := len(slab)
		slab = append(slab, rec.RawSample...)
		batch = append(batch, slab[start:len(slab):len(slab)])
		if len(batch) < maxBatch && more() {
			continue
		}
		if !lingered && len(batch) < maxBatch {
			// The ring is empty: wait a moment for more before handing
			// the batch over. The kernel wakes this reader for the first
			// record written after it caught up, and not for those that
			// follow while it lingers: at tens of thousands of records a
			// second, every stage after this one then wakes once per
			// batch, not once per record. An idle reader costs nothing
			// (it waits for the kernel), and a record waits at most
			// linger more.
			lingered = true
			time.Sleep(linger)
			if more() {
				continue
			}
		}
		r.send(batch)
		batch = nil
		lingered = false
		if bounded {
			r.rd.SetDeadline(time.Time{})
			bounded = false
		}
	}
}

// batchWait bounds how long read records wait for the rest of their batch.
const batchWait = time.Millisecond

// linger is how long a batch waits for more records once the ring is empty.
const linger = time.Millisecond

// send queues a batch, or drops it when the queue holds its limit.
func (r *Reader) send(batch [][]byte) {
	n := int64(len(batch))
	if r.pending.Add(n) <= r.limit {
		select {
		case r.queue <- batch:
			return
		default:
		}
	}
	r.pending.Add(-n)
	if r.dropped.Add(uint64(n)) == uint64(n) {
		r.log.Warn().Msg("event queue full: dropping records (see tetra status for the count)")
	}
}
