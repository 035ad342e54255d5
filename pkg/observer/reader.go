package observer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"
)

// Reader moves raw records from the kernel's ring buffer into a bounded
// queue. It never blocks on a full queue: it drops the record and counts it,
// so a stalled consumer shows up as a number instead of stalling the kernel
// side (whose own drops the sensor counts).
type Reader struct {
	rd      *ringbuf.Reader
	queue   chan []byte
	log     zerolog.Logger
	records atomic.Uint64
	dropped atomic.Uint64
}

// NewReader opens a reader on the ring buffer map with a queue of queueLen records.
func NewReader(events *ebpf.Map, queueLen int, log zerolog.Logger) (*Reader, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	return &Reader{rd: rd, queue: make(chan []byte, queueLen), log: log}, nil
}

// Queue is where raw records come out; it is closed when Run returns.
func (r *Reader) Queue() <-chan []byte { return r.queue }

// Records is the number of records read from the ring buffer.
func (r *Reader) Records() uint64 { return r.records.Load() }

// Dropped is the number of records dropped because the queue was full.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Run reads until ctx is done or the reader is closed.
func (r *Reader) Run(ctx context.Context) error {
	defer close(r.queue)
	stop := context.AfterFunc(ctx, func() { r.rd.Close() })
	defer stop()
	var rec ringbuf.Record
	for {
		if err := r.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		r.records.Add(1)
		raw := make([]byte, len(rec.RawSample))
		copy(raw, rec.RawSample)
		select {
		case r.queue <- raw:
		default:
			if r.dropped.Add(1) == 1 {
				r.log.Warn().Msg("event queue full: dropping records (see tetra status for the count)")
			}
		}
	}
}

// Close stops Run.
func (r *Reader) Close() error { return r.rd.Close() }
