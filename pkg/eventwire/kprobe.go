package eventwire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// A process_kprobe event's fields after process and parent (the function,
// its arguments, the policy) are written here by hand, as proto.Marshal
// writes them: protobuf's own marshalling of these few small messages was
// most of what an event cost the agent once the processes were spliced in
// (issue 16). What this code does not write exactly as proto.Marshal does
// (an argument kind not listed here, stack traces, unknown fields, a string
// that is not UTF-8, which proto.Marshal refuses) makes it decline, and the
// event takes protobuf's path. TestKprobeRestEqualsMarshal and
// FuzzKprobeRest hold the bytes to proto.Marshal's.

// ProcessKprobe's field numbers after process and parent.
const (
	kFunctionName protowire.Number = 3
	kArgs         protowire.Number = 4
	kReturn       protowire.Number = 5
	kAction       protowire.Number = 6
	kPolicyName   protowire.Number = 8
	kReturnAction protowire.Number = 9
	kMessage      protowire.Number = 10
	kTags         protowire.Number = 11
	kData         protowire.Number = 14
	kMechanism    protowire.Number = 10000
)

// KprobeArgument's field numbers this code writes.
const (
	aString protowire.Number = 1
	aInt    protowire.Number = 2
	aSize   protowire.Number = 4
	aBytes  protowire.Number = 5
	aPath   protowire.Number = 6
	aFile   protowire.Number = 7
	aLong   protowire.Number = 11
	aUint   protowire.Number = 15
	aLabel  protowire.Number = 18
)

// appendKprobeRest appends k's fields 3 and up; ok is false, with buf as
// it was, where it would not write what proto.Marshal writes.
func appendKprobeRest(buf []byte, k *api.ProcessKprobe) (_ []byte, ok bool) {
	if len(k.GetKernelStackTrace()) > 0 || len(k.GetUserStackTrace()) > 0 {
		return buf, false
	}
	start := len(buf)
	w := writer{buf: buf, ok: true}
	w.str(kFunctionName, k.GetFunctionName())
	for _, a := range k.GetArgs() {
		w.arg(kArgs, a)
	}
	if r := k.GetReturn(); r != nil {
		w.arg(kReturn, r)
	}
	w.enum(kAction, int32(k.GetAction()))
	w.str(kPolicyName, k.GetPolicyName())
	w.enum(kReturnAction, int32(k.GetReturnAction()))
	w.str(kMessage, k.GetMessage())
	for _, t := range k.GetTags() {
		w.repeatedStr(kTags, t)
	}
	for _, a := range k.GetData() {
		w.arg(kData, a)
	}
	w.str(kMechanism, k.GetMechanism())
	if !w.ok {
		return buf[:start], false
	}
	return w.buf, true
}

// restEstimate is at least the size appendKprobeRest writes for k, for
// arguments of the kinds it writes: their strings and bytes, and room for
// every tag, length and integer.
func restEstimate(k *api.ProcessKprobe) int {
	n := 32 + len(k.GetFunctionName()) + len(k.GetPolicyName()) + len(k.GetMessage()) + len(k.GetMechanism())
	for _, t := range k.GetTags() {
		n += 8 + len(t)
	}
	for _, args := range [][]*api.KprobeArgument{k.GetArgs(), k.GetData(), {k.GetReturn()}} {
		for _, a := range args {
			n += 48 + len(a.GetLabel()) + len(a.GetStringArg()) + len(a.GetBytesArg())
			if p := a.GetPathArg(); p != nil {
				n += len(p.GetMount()) + len(p.GetPath()) + len(p.GetFlags()) + len(p.GetPermission())
			}
			if f := a.GetFileArg(); f != nil {
				n += len(f.GetMount()) + len(f.GetPath()) + len(f.GetFlags()) + len(f.GetPermission())
			}
		}
	}
	return n
}

// writer appends fields; ok turns false at the first value it declines.
type writer struct {
	buf []byte
	ok  bool
}

// str writes a singular string field: left out when empty, as proto3
// leaves out zero values.
func (w *writer) str(num protowire.Number, s string) {
	if s != "" {
		w.repeatedStr(num, s)
	}
}

// repeatedStr writes a string whatever its value (a repeated element, a
// oneof member).
func (w *writer) repeatedStr(num protowire.Number, s string) {
	if !utf8.ValidString(s) {
		w.ok = false
		return
	}
	w.buf = protowire.AppendTag(w.buf, num, protowire.BytesType)
	w.buf = protowire.AppendString(w.buf, s)
}

func (w *writer) enum(num protowire.Number, v int32) {
	if v != 0 {
		w.varint(num, uint64(int64(v)))
	}
}

func (w *writer) varint(num protowire.Number, v uint64) {
	w.buf = protowire.AppendTag(w.buf, num, protowire.VarintType)
	w.buf = protowire.AppendVarint(w.buf, v)
}

// open starts a message field; close writes its length once its content
// is written. The length takes one byte until the content reaches 128
// bytes; past that, the content moves up to make room.
func (w *writer) open(num protowire.Number) int {
	w.buf = protowire.AppendTag(w.buf, num, protowire.BytesType)
	w.buf = append(w.buf, 0)
	return len(w.buf)
}

func (w *writer) close(start int) {
	n := len(w.buf) - start
	if extra := protowire.SizeVarint(uint64(n)) - 1; extra > 0 {
		w.buf = append(w.buf, make([]byte, extra)...)
		copy(w.buf[start+extra:], w.buf[start:start+n])
	}
	// the length over the placeholder byte (and the room made after it)
	protowire.AppendVarint(w.buf[:start-1], uint64(n))
}

// arg writes a KprobeArgument as field num. proto.Marshal writes a
// message's plain fields before its oneof (the label, 18, before the
// value), and a oneof member whenever it is set, zero or not.
func (w *writer) arg(num protowire.Number, a *api.KprobeArgument) {
	if a == nil || len(a.ProtoReflect().GetUnknown()) > 0 {
		w.ok = false
		return
	}
	start := w.open(num)
	w.str(aLabel, a.GetLabel())
	switch v := a.GetArg().(type) {
	case nil:
	case *api.KprobeArgument_StringArg:
		w.repeatedStr(aString, v.StringArg)
	case *api.KprobeArgument_IntArg:
		w.varint(aInt, uint64(int64(v.IntArg)))
	case *api.KprobeArgument_SizeArg:
		w.varint(aSize, v.SizeArg)
	case *api.KprobeArgument_BytesArg:
		w.buf = protowire.AppendTag(w.buf, aBytes, protowire.BytesType)
		w.buf = protowire.AppendBytes(w.buf, v.BytesArg)
	case *api.KprobeArgument_PathArg:
		p := v.PathArg
		if p == nil {
			w.ok = false // proto.Marshal writes a nil member as an empty message; rare enough to leave to it
			return
		}
		w.fileFields(aPath, p.GetMount(), p.GetPath(), p.GetFlags(), p.GetPermission(), len(p.ProtoReflect().GetUnknown()) > 0)
	case *api.KprobeArgument_FileArg:
		f := v.FileArg
		if f == nil {
			w.ok = false
			return
		}
		w.fileFields(aFile, f.GetMount(), f.GetPath(), f.GetFlags(), f.GetPermission(), len(f.ProtoReflect().GetUnknown()) > 0)
	case *api.KprobeArgument_LongArg:
		w.varint(aLong, uint64(v.LongArg))
	case *api.KprobeArgument_UintArg:
		w.varint(aUint, uint64(v.UintArg))
	default:
		w.ok = false
		return
	}
	w.close(start)
}

// fileFields writes a KprobePath or KprobeFile (the same four fields).
func (w *writer) fileFields(num protowire.Number, mount, path, flags, permission string, unknown bool) {
	if unknown {
		w.ok = false
		return
	}
	start := w.open(num)
	w.str(1, mount)
	w.str(2, path)
	w.str(3, flags)
	w.str(4, permission)
	w.close(start)
}
