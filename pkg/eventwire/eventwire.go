// Package eventwire builds an event's protobuf wire bytes from its process
// and parent marshalled once per process (exec id), not once per event.
//
// Every event carries its process and parent in full: with ~80 capability
// enums, ten namespaces and eight credential wrappers each they are most of
// an event's bytes and most of the cost of marshalling it. A process does
// not change once the cache stores it, so its bytes are marshalled once and
// spliced into every event about it. The result is byte for byte what
// proto.Marshal writes for the whole event (every event message holds process = 1 and
// parent = 2, its first fields; TestSplicedEqualsMarshal holds the bytes
// to proto.Marshal's for every event type), so a client cannot tell.
package eventwire

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// Field numbers shared by every event message of the API (ProcessExec,
// ProcessExit, ProcessKprobe, ProcessTracepoint, ProcessUprobe, ProcessLsm).
const (
	ProcessField protowire.Number = 1
	ParentField  protowire.Number = 2
)

// Process marshals a process for Marshal.
func Process(p *api.Process) ([]byte, error) {
	b, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshalling process %s: %w", p.GetExecId(), err)
	}
	return b, nil
}

// Marshal appends ev's wire bytes to buf, as proto.Marshal(ev) writes them.
// proc and parent are the wire bytes of the event's process and parent
// (from Process); nil ones are marshalled here.
func Marshal(buf []byte, ev *api.GetEventsResponse, proc, parent []byte) ([]byte, error) {
	if b, ok, err := marshalHot(buf, ev, proc, parent); ok || err != nil {
		return b, err
	}
	outer := ev.ProtoReflect()
	oneof := outer.Descriptor().Oneofs().ByName("event")
	fd := outer.WhichOneof(oneof)
	if fd == nil {
		// no event: nothing to splice
		return proto.MarshalOptions{}.MarshalAppend(buf, ev)
	}
	inner := outer.Get(fd).Message()
	innerDesc := inner.Descriptor()
	pf, qf := innerDesc.Fields().ByNumber(ProcessField), innerDesc.Fields().ByNumber(ParentField)
	if pf == nil || qf == nil || pf.Name() != "process" || qf.Name() != "parent" {
		// Tetragon's ProcessLoader has its parent at 4, after path and
		// buildid: such an event, rare, is marshalled whole
		return proto.MarshalOptions{}.MarshalAppend(buf, ev)
	}
	var err error
	if proc, err = fieldBytes(inner, pf, proc); err != nil {
		return nil, err
	}
	if parent, err = fieldBytes(inner, qf, parent); err != nil {
		return nil, err
	}
	// the inner message without process and parent: fields 3 and up, and
	// what is unknown, which proto.Marshal writes last
	rest := inner.Type().New()
	inner.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.Number() > ParentField {
			rest.Set(f, v)
		}
		return true
	})
	rest.SetUnknown(inner.GetUnknown())
	restSize := proto.Size(rest.Interface())
	innerSize := restSize
	if inner.Has(pf) {
		innerSize += protowire.SizeTag(ProcessField) + protowire.SizeBytes(len(proc))
	}
	if inner.Has(qf) {
		innerSize += protowire.SizeTag(ParentField) + protowire.SizeBytes(len(parent))
	}

	// proto.Marshal writes a message's plain fields in field-number order,
	// then its oneof, then what is unknown: node_name and time, the
	// event, the rest
	top := outer.Type().New()
	outer.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.ContainingOneof() != oneof {
			top.Set(f, v)
		}
		return true
	})
	if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf, top.Interface()); err != nil {
		return nil, fmt.Errorf("marshalling event: %w", err)
	}

	buf = protowire.AppendTag(buf, fd.Number(), protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(innerSize))
	if inner.Has(pf) {
		buf = protowire.AppendTag(buf, ProcessField, protowire.BytesType)
		buf = protowire.AppendBytes(buf, proc)
	}
	if inner.Has(qf) {
		buf = protowire.AppendTag(buf, ParentField, protowire.BytesType)
		buf = protowire.AppendBytes(buf, parent)
	}
	start := len(buf)
	if buf, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(buf, rest.Interface()); err != nil {
		return nil, fmt.Errorf("marshalling event: %w", err)
	}
	if len(buf)-start != restSize {
		return nil, fmt.Errorf("marshalling event: %d bytes, sized %d", len(buf)-start, restSize)
	}
	return append(buf, outer.GetUnknown()...), nil
}

// fieldBytes is b, or the wire bytes of field f of m when b is nil.
func fieldBytes(m protoreflect.Message, f protoreflect.FieldDescriptor, b []byte) ([]byte, error) {
	if b != nil || !m.Has(f) {
		return b, nil
	}
	b, err := proto.Marshal(m.Get(f).Message().Interface())
	if err != nil {
		return nil, fmt.Errorf("marshalling the event's %s: %w", f.Name(), err)
	}
	return b, nil
}

// marshalHot is Marshal for the agent's events of the hot kinds (exec, exit,
// kprobe, with no unknown fields) without reflection, which was most of
// Marshal's cost. A kprobe event's fields after process and parent are
// written by hand where appendKprobeRest can (kprobe.go); the rest of an
// event is built as a struct without process and parent and marshalled by
// protobuf. ok is false for any other event. A field added to these
// messages and not copied here makes TestSplicedEqualsMarshal fail.
func marshalHot(buf []byte, ev *api.GetEventsResponse, proc, parent []byte) (_ []byte, ok bool, _ error) {
	if len(ev.ProtoReflect().GetUnknown()) > 0 {
		return buf, false, nil
	}
	var num protowire.Number
	var p, q *api.Process
	var inner proto.Message
	var kprobe *api.ProcessKprobe
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		m := e.ProcessExec
		num, inner, p, q = 1, m, m.GetProcess(), m.GetParent()
	case *api.GetEventsResponse_ProcessExit:
		m := e.ProcessExit
		num, inner, p, q = 5, m, m.GetProcess(), m.GetParent()
	case *api.GetEventsResponse_ProcessKprobe:
		kprobe = e.ProcessKprobe
		num, inner, p, q = 9, kprobe, kprobe.GetProcess(), kprobe.GetParent()
	default:
		return buf, false, nil
	}
	if inner == nil || len(inner.ProtoReflect().GetUnknown()) > 0 {
		return buf, false, nil
	}
	// plain fields, then the oneof, as proto.Marshal orders them
	topLen, ok := topSize(ev)
	if !ok {
		return buf, false, nil
	}
	proc, parent, err := processBytes(p, q, proc, parent)
	if err != nil {
		return nil, true, err
	}
	// one allocation, of about the size needed: the processes are most
	// of the bytes
	need := topLen + len(proc) + len(parent) + 64
	if kprobe != nil {
		need += restEstimate(kprobe)
	}
	if cap(buf)-len(buf) < need {
		buf = append(make([]byte, 0, len(buf)+need), buf...)
	}
	w := writer{buf: appendTop(buf, ev), ok: true}
	start := w.open(num)
	if p != nil {
		w.buf = protowire.AppendTag(w.buf, ProcessField, protowire.BytesType)
		w.buf = protowire.AppendBytes(w.buf, proc)
	}
	if q != nil {
		w.buf = protowire.AppendTag(w.buf, ParentField, protowire.BytesType)
		w.buf = protowire.AppendBytes(w.buf, parent)
	}
	if kprobe != nil {
		if w.buf, ok = appendKprobeRest(w.buf, kprobe); ok {
			w.close(start)
			return w.buf, true, nil
		}
	}
	if w.buf, err = (proto.MarshalOptions{}).MarshalAppend(w.buf, restOf(ev)); err != nil {
		return nil, true, fmt.Errorf("marshalling event: %w", err)
	}
	w.close(start)
	return w.buf, true, nil
}

// restOf is the event message of ev (a hot kind) without its process and
// parent: a short-lived copy (no package-level pool: the project keeps no
// package-level mutable state).
func restOf(ev *api.GetEventsResponse) proto.Message {
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExit:
		m := e.ProcessExit
		return &api.ProcessExit{Signal: m.GetSignal(), Status: m.GetStatus(), Time: m.GetTime()}
	case *api.GetEventsResponse_ProcessKprobe:
		m := e.ProcessKprobe
		k := new(api.ProcessKprobe)
		k.FunctionName, k.Args, k.Return, k.Action = m.GetFunctionName(), m.GetArgs(), m.GetReturn(), m.GetAction()
		k.KernelStackTrace, k.PolicyName, k.ReturnAction = m.GetKernelStackTrace(), m.GetPolicyName(), m.GetReturnAction()
		k.Message, k.Tags, k.UserStackTrace, k.Mechanism = m.GetMessage(), m.GetTags(), m.GetUserStackTrace(), m.GetMechanism()
		k.Data = m.GetData()
		return k
	}
	return &api.ProcessExec{}
}

// processBytes is the wire bytes of the event's process p and parent q:
// proc and parent as given (the process cache's), or marshalled here when
// nil.
func processBytes(p, q *api.Process, proc, parent []byte) (_, _ []byte, err error) {
	if p != nil && proc == nil {
		if proc, err = Process(p); err != nil {
			return nil, nil, err
		}
	}
	if q != nil && parent == nil {
		if parent, err = Process(q); err != nil {
			return nil, nil, err
		}
	}
	return proc, parent, nil
}

// Field numbers of GetEventsResponse's plain fields, and of Timestamp's.
const (
	nodeNameField protowire.Number = 1000
	timeField     protowire.Number = 1001
	secondsField  protowire.Number = 1
	nanosField    protowire.Number = 2
)

// topSize is the size of ev's node_name and time as proto.Marshal writes
// them; ok is false when proto.Marshal would not write them as appendTop
// does (a node name it rejects, a time with unknown fields), which the
// reflection path then handles. Writing these two fields by hand spares
// every event a GetEventsResponse of its own.
func topSize(ev *api.GetEventsResponse) (n int, ok bool) {
	if name := ev.GetNodeName(); name != "" {
		if !utf8.ValidString(name) {
			return 0, false // proto.Marshal's error, from the reflection path
		}
		n += protowire.SizeTag(nodeNameField) + protowire.SizeBytes(len(name))
	}
	if t := ev.GetTime(); t != nil {
		if len(t.ProtoReflect().GetUnknown()) > 0 {
			return 0, false
		}
		n += protowire.SizeTag(timeField) + protowire.SizeBytes(timestampSize(t))
	}
	return n, true
}

func timestampSize(t *timestamppb.Timestamp) int {
	n := 0
	if s := t.GetSeconds(); s != 0 {
		n += protowire.SizeTag(secondsField) + protowire.SizeVarint(uint64(s))
	}
	if ns := t.GetNanos(); ns != 0 {
		n += protowire.SizeTag(nanosField) + protowire.SizeVarint(uint64(int64(ns)))
	}
	return n
}

// appendTop appends ev's node_name and time (checked by topSize) as
// proto.Marshal writes them: in field-number order, zero values left out.
func appendTop(buf []byte, ev *api.GetEventsResponse) []byte {
	if name := ev.GetNodeName(); name != "" {
		buf = protowire.AppendTag(buf, nodeNameField, protowire.BytesType)
		buf = protowire.AppendString(buf, name)
	}
	if t := ev.GetTime(); t != nil {
		buf = protowire.AppendTag(buf, timeField, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(timestampSize(t)))
		if s := t.GetSeconds(); s != 0 {
			buf = protowire.AppendTag(buf, secondsField, protowire.VarintType)
			buf = protowire.AppendVarint(buf, uint64(s))
		}
		if ns := t.GetNanos(); ns != 0 {
			buf = protowire.AppendTag(buf, nanosField, protowire.VarintType)
			buf = protowire.AppendVarint(buf, uint64(int64(ns)))
		}
	}
	return buf
}
