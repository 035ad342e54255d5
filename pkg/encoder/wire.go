package encoder

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// WireJSON writes JSON lines, as JSON does, from events in protobuf's wire
// format, as `tetra getevents` receives them. Decoding every event in full
// was most of the client's time: each carries its process and parent, and
// most events are about a few processes. So the process and parent are
// kept in their wire bytes, and each distinct process is decoded and
// rendered once: its JSON is looked up by its bytes and spliced in. So is
// the rest of the event message (the function, its arguments, the
// policy), which repeats as much; node_name and time are decoded by hand.
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
	inner []byte
	// rests is the JSON of the rest of each event message seen, by its
	// field number and bytes
	rests map[string][]byte
	// events are GetEventsResponse's event field numbers
	events map[protowire.Number]bool
}

// NewWireJSON returns a JSON-lines encoder of wire-format events writing
// to w. It is not safe for concurrent use.
func NewWireJSON(w io.Writer) *WireJSON {
	e := &WireJSON{json: NewJSON(w), procs: make(map[string][]byte), rests: make(map[string][]byte), pw: newFastWriter(), events: map[protowire.Number]bool{}}
	fields := (&api.GetEventsResponse{}).ProtoReflect().Descriptor().Oneofs().ByName("event").Fields()
	for i := range fields.Len() {
		e.events[fields.Get(i).Number()] = true
	}
	return e
}

// EncodeWire writes the event in raw (a GetEventsResponse's wire bytes) as
// one line.
func (e *WireJSON) EncodeWire(raw []byte) error {
	line, ok := e.splice(e.json.buf[:0], raw)
	if !ok {
		ev := &api.GetEventsResponse{}
		if err := proto.Unmarshal(raw, ev); err != nil {
			return fmt.Errorf("decoding event: %w", err)
		}
		return e.json.Encode(ev)
	}
	line = append(line, '\n')
	e.json.buf = line
	if _, err := e.json.w.Write(line); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return nil
}

// eventNames are the event fields the splice serves, by number.
var eventNames = map[protowire.Number]string{1: "process_exec", 5: "process_exit", 9: "process_kprobe"}

// splice appends the event's line, without decoding what it has seen
// before: the process and parent, and the rest of the event message (the
// function, its arguments, the policy), each by its bytes. Only node_name
// and time are decoded every time, by hand. ok is false where the full
// path must decide.
func (e *WireJSON) splice(buf, raw []byte) (_ []byte, ok bool) {
	var num protowire.Number
	var body, node, ts []byte
	events, nodes, times := 0, 0, 0
	if !fields(raw, func(n protowire.Number, typ protowire.Type, _, value []byte) bool {
		switch {
		case e.events[n]:
			events++
			num, body = n, value
		case n == 1000:
			nodes++
			node = value
		case n == 1001:
			times++
			ts = value
		default:
			// an unknown field: left out of the JSON by both paths,
			// but let the full path have it
			return false
		}
		return typ == protowire.BytesType
	}) || events != 1 || nodes > 1 || times > 1 {
		return nil, false
	}
	name, ok := eventNames[num]
	if !ok || !utf8.Valid(node) {
		return nil, false
	}
	var secs int64
	var nanos int32
	if times == 1 && !fields(ts, func(n protowire.Number, typ protowire.Type, field, _ []byte) bool {
		if typ != protowire.VarintType || (n != 1 && n != 2) {
			return false
		}
		v, _ := protowire.ConsumeVarint(field[protowire.SizeTag(n):])
		if n == 1 {
			secs = int64(v)
		} else {
			nanos = int32(v)
		}
		return true
	}) {
		return nil, false
	}

	var proc, parent []byte
	hasProc, hasParent := false, false
	e.inner = append(e.inner[:0], byte(num))
	if !fields(body, func(n protowire.Number, typ protowire.Type, field, value []byte) bool {
		switch n {
		case 1:
			if hasProc || typ != protowire.BytesType {
				return false
			}
			proc, hasProc = value, true
		case 2:
			if hasParent || typ != protowire.BytesType {
				return false
			}
			parent, hasParent = value, true
		default:
			e.inner = append(e.inner, field...)
		}
		return true
	}) {
		return nil, false
	}
	var procJSON, parentJSON []byte
	if hasProc {
		if procJSON, ok = e.processJSON(proc); !ok {
			return nil, false
		}
	}
	if hasParent {
		if parentJSON, ok = e.processJSON(parent); !ok {
			return nil, false
		}
	}
	rest, ok := e.restJSON(num, e.inner)
	if !ok {
		return nil, false
	}

	w := e.json.fast
	w.buf, w.ok = buf, true
	first := true
	w.byte('{')
	w.key(&first, name)
	inner := true
	w.byte('{')
	if hasProc {
		w.key(&inner, "process")
		w.buf = append(w.buf, procJSON...)
	}
	if hasParent {
		w.key(&inner, "parent")
		w.buf = append(w.buf, parentJSON...)
	}
	if len(rest) > 0 {
		if !inner {
			w.byte(',')
		}
		w.buf = append(w.buf, rest...)
	}
	w.byte('}')
	if len(node) > 0 {
		w.key(&first, "node_name")
		w.string(string(node))
	}
	if times == 1 {
		w.key(&first, "time")
		w.timestamp(&timestamppb.Timestamp{Seconds: secs, Nanos: nanos})
	}
	w.byte('}')
	return w.buf, w.ok
}

// restJSON is the JSON of the fields of an event message other than its
// process and parent (key: the event's field number, then those fields'
// bytes), without the braces, rendered once per distinct value.
func (e *WireJSON) restJSON(num protowire.Number, key []byte) ([]byte, bool) {
	if j, ok := e.rests[string(key)]; ok {
		return j, true
	}
	var m proto.Message
	var render func()
	switch num {
	case 1:
		x := &api.ProcessExec{}
		m, render = x, func() { e.pw.processExec(x) }
	case 5:
		x := &api.ProcessExit{}
		m, render = x, func() { e.pw.processExit(x) }
	case 9:
		x := &api.ProcessKprobe{}
		m, render = x, func() { e.pw.processKprobe(x) }
	default:
		return nil, false
	}
	if proto.Unmarshal(key[1:], m) != nil {
		return nil, false
	}
	e.pw.buf, e.pw.ok = e.pw.buf[:0], true
	render()
	if !e.pw.ok {
		return nil, false
	}
	if len(e.rests) >= maxCachedProcesses {
		clear(e.rests)
	}
	j := bytes.Clone(e.pw.buf[1 : len(e.pw.buf)-1])
	e.rests[string(key)] = j
	return j, true
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
	j := bytes.Clone(e.pw.buf)
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
