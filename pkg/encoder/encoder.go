// Package encoder renders events for people (compact, one emoji line per
// event, like Tetragon's `tetra getevents -o compact`) and for programs (JSON
// lines, Tetragon's field names, so jq recipes keep working).
//
// Every encoder writes one whole line per Encode with a single Write, so an
// unbuffered writer shows each event as soon as it arrives.
package encoder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// Encoder writes events.
type Encoder interface {
	Encode(*api.GetEventsResponse) error
}

// JSON writes one JSON object per line: protojson's output (proto field
// names), compacted. Exec, exit and kprobe events go through a hand-written
// encoder that writes the same bytes (jsonfast.go) at a fraction of the
// cost; any other event goes through protojson.
type JSON struct {
	w    io.Writer
	opts protojson.MarshalOptions
	// buf is reused across events: one line is built, then written
	buf []byte
	// compact is protojson's output compacted, for the fallback
	compact bytes.Buffer
	fast    *fastWriter
}

// NewJSON returns a JSON-lines encoder writing to w. It is not safe for
// concurrent use.
func NewJSON(w io.Writer) *JSON {
	return &JSON{w: w, opts: protojson.MarshalOptions{UseProtoNames: true}, fast: newFastWriter()}
}

// CacheProcesses keeps the JSON of the processes written, by pointer, and
// reuses it for later events about the same process: for a caller whose
// events share processes that are never modified once an event holds them
// (the agent's process cache).
func (e *JSON) CacheProcesses() { e.fast.byPointer = make(map[*api.Process][]byte) }

// Encode writes ev as one line with snake_case field names.
func (e *JSON) Encode(ev *api.GetEventsResponse) error {
	line, ok := e.fast.appendFastJSON(e.buf[:0], ev)
	if !ok {
		var err error
		if line, err = e.protojson(ev); err != nil {
			return err
		}
	}
	line = append(line, '\n')
	e.buf = line
	if _, err := e.w.Write(line); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return nil
}

// protojson renders ev through protojson: the reference the fast encoder
// matches, and the path for events it does not handle (and for values
// protojson refuses, so the error is protojson's).
func (e *JSON) protojson(ev *api.GetEventsResponse) ([]byte, error) {
	raw, err := e.opts.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshalling event to JSON: %w", err)
	}
	// protojson varies its whitespace on purpose; compacting makes the
	// output stable and guarantees a single line.
	e.compact.Reset()
	if err := json.Compact(&e.compact, raw); err != nil {
		return nil, fmt.Errorf("compacting event JSON: %w", err)
	}
	return append(e.buf[:0], e.compact.Bytes()...), nil
}
