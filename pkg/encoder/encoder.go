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

// JSON writes one JSON object per line.
type JSON struct {
	w    io.Writer
	opts protojson.MarshalOptions
	buf  bytes.Buffer
}

// NewJSON returns a JSON-lines encoder writing to w. It is not safe for
// concurrent use.
func NewJSON(w io.Writer) *JSON {
	return &JSON{w: w, opts: protojson.MarshalOptions{UseProtoNames: true}}
}

// Encode writes ev as one line with snake_case field names.
func (e *JSON) Encode(ev *api.GetEventsResponse) error {
	raw, err := e.opts.Marshal(ev)
	if err != nil {
		return fmt.Errorf("marshalling event to JSON: %w", err)
	}
	// protojson varies its whitespace on purpose; compacting makes the
	// output stable and guarantees a single line.
	e.buf.Reset()
	if err := json.Compact(&e.buf, raw); err != nil {
		return fmt.Errorf("compacting event JSON: %w", err)
	}
	e.buf.WriteByte('\n')
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return nil
}
