package observer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// ErrIncompatible means a ring buffer holds records of another format
// version: an agent of another release left it.
var ErrIncompatible = errors.New("records of an incompatible format")

// Drain reads every record waiting in a ring buffer nobody writes to any
// more. If the records are of another format version, it returns none and
// an error wrapping ErrIncompatible.
func Drain(events *ebpf.Map) ([][]byte, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	defer rd.Close()
	// a deadline in the past: read what is there, never wait
	rd.SetDeadline(time.Now())
	var recs [][]byte
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return nil, fmt.Errorf("reading ring buffer: %w", err)
		}
		raw := make([]byte, len(rec.RawSample))
		copy(raw, rec.RawSample)
		if _, err := header(raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrIncompatible, err)
		}
		recs = append(recs, raw)
	}
	return recs, nil
}
