package encoder

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// WireJSON writes JSON lines, as JSON does, from events in protobuf's wire
// format, as `tetra getevents` receives them. Decoding every event in full
// was most of the client's time: each carries its process and parent, and
// most events are about a few processes. So the process and parent are
// kept in their wire bytes, and each distinct process is decoded and
// rendered once: its JSON is looked up by its bytes and spliced in. Only the
// rest of the event (the function, its arguments, the time) is decoded.
//
// The output is JSON's on the fully decoded event, byte for byte
// (TestWireJSONMatchesJSON, FuzzWireJSONMatchesJSON). What the splice
// cannot vouch for takes the full path: an event type without a fast
// encoder, a field repeated (protobuf merges those), a value the fast
// encoder declines.
type WireJSON struct {
	json *JSON
	// procs is the JSON of each process seen, by its wire bytes
	procs map[string][]byte
	pw    *fastWriter
	// scratch: the event without its event field, and the event message
	// without process and parent
	outer, inner []byte
	spliced      splicedProcesses
	// events are GetEventsResponse's event field numbers
	events map[protowire.Number]bool
}

// NewWireJSON returns a JSON-lines encoder of wire-format events writing
// to w. It is not safe for concurrent use.
func NewWireJSON(w io.Writer) *WireJSON {
	e := &WireJSON{json: NewJSON(w), procs: make(map[string][]byte), pw: newFastWriter(), events: map[protowire.Number]bool{}}
	fields := (&api.GetEventsResponse{}).ProtoReflect().Descriptor().Oneofs().ByName("event").Fields()
	for i := range fields.Len() {
		e.events[fields.Get(i).Number()] = true
	}
	return e
}

// EncodeWire writes the event in raw (a GetEventsResponse's wire bytes) as
// one line.
func (e *WireJSON) EncodeWire(raw []byte) error {
	if ev, ok := e.splice(raw); ok {
		line, ok := e.json.fast.appendFastJSON(e.json.buf[:0], ev)
		e.json.fast.spliced = nil
		if ok {
			line = append(line, '\n')
			e.json.buf = line
			if _, err := e.json.w.Write(line); err != nil {
				return fmt.Errorf("writing event: %w", err)
			}
			return nil
		}
	}
	ev := &api.GetEventsResponse{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	return e.json.Encode(ev)
}

// splice decodes raw but for its process and parent, whose JSON it sets
// up for the fast writer. ok is false where the full path must decide.
func (e *WireJSON) splice(raw []byte) (*api.GetEventsResponse, bool) {
	var num protowire.Number
	var body []byte
	events := 0
	e.outer = e.outer[:0]
	if !fields(raw, func(n protowire.Number, typ protowire.Type, field, value []byte) bool {
		if !e.events[n] {
			e.outer = append(e.outer, field...)
			return true
		}
		events++
		num, body = n, value
		return typ == protowire.BytesType
	}) || events != 1 {
		return nil, false
	}
	s := &e.spliced
	*s = splicedProcesses{}
	var proc, parent []byte
	e.inner = e.inner[:0]
	if !fields(body, func(n protowire.Number, typ protowire.Type, field, value []byte) bool {
		switch n {
		case 1:
			if s.hasProcess || typ != protowire.BytesType {
				return false
			}
			proc, s.hasProcess = value, true
		case 2:
			if s.hasParent || typ != protowire.BytesType {
				return false
			}
			parent, s.hasParent = value, true
		default:
			e.inner = append(e.inner, field...)
		}
		return true
	}) {
		return nil, false
	}
	// the rest of the event first: Unmarshal resets the message
	ev := &api.GetEventsResponse{}
	if proto.Unmarshal(e.outer, ev) != nil {
		return nil, false
	}
	var inner proto.Message
	switch num {
	case 1:
		m := &api.ProcessExec{}
		inner, ev.Event = m, &api.GetEventsResponse_ProcessExec{ProcessExec: m}
	case 5:
		m := &api.ProcessExit{}
		inner, ev.Event = m, &api.GetEventsResponse_ProcessExit{ProcessExit: m}
	case 9:
		m := &api.ProcessKprobe{}
		inner, ev.Event = m, &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: m}
	default:
		return nil, false
	}
	if proto.Unmarshal(e.inner, inner) != nil {
		return nil, false
	}
	var ok bool
	if s.hasProcess {
		if s.process, ok = e.processJSON(proc); !ok {
			return nil, false
		}
	}
	if s.hasParent {
		if s.parent, ok = e.processJSON(parent); !ok {
			return nil, false
		}
	}
	e.json.fast.spliced = s
	return ev, true
}

// processJSON is the JSON of the process in b, rendered once per distinct
// process.
func (e *WireJSON) processJSON(b []byte) ([]byte, bool) {
	if j, ok := e.procs[string(b)]; ok {
		return j, true
	}
	p := &api.Process{}
	if proto.Unmarshal(b, p) != nil {
		return nil, false
	}
	e.pw.buf, e.pw.ok = e.pw.buf[:0], true
	e.pw.process(p)
	if !e.pw.ok {
		return nil, false
	}
	if len(e.procs) >= maxCachedProcesses {
		clear(e.procs)
	}
	j := append([]byte(nil), e.pw.buf...)
	e.procs[string(b)] = j
	return j, true
}

// fields calls f on each field of the message in b (field: the whole field,
// value: a length-delimited field's contents); false when b is not
// well-formed or f says stop.
func fields(b []byte, f func(n protowire.Number, typ protowire.Type, field, value []byte) bool) bool {
	for len(b) > 0 {
		n, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return false
		}
		vl := protowire.ConsumeFieldValue(n, typ, b[tl:])
		if vl < 0 {
			return false
		}
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(b[tl:])
		}
		if !f(n, typ, b[:tl+vl], value) {
			return false
		}
		b = b[tl+vl:]
	}
	return true
}
