// Package observer reads the kernel's ring buffer, queues raw records in a
// bounded queue and decodes them into typed records.
package observer

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/tetragon-lite/tetragon/bpf"
)

// Record ops and the format version, as in bpf/lib/common.h.
const (
	OpExec = 1
	OpExit = 2
	OpFork = 3
	// OpGeneric is a TracingPolicy hook's record.
	OpGeneric = 4

	RecordVersion = 1
)

// Exec flags, as in bpf/process.c.
const (
	ExecTruncArgs     = 0x01
	ExecTruncBinary   = 0x02
	ExecTruncCwd      = 0x04
	ExecDeletedBinary = 0x08
	ExecNoCwd         = 0x10
	ExecErrArgs       = 0x20
)

// Namespace indexes of Exec.Ns.
const (
	NsUts = iota
	NsIpc
	NsMnt
	NsPid
	NsPidForChildren
	NsNet
	NsTime
	NsTimeForChildren
	NsCgroup
	NsUser
	NsCount
)

// ErrMalformed marks a record that cannot be decoded.
var errMalformed = errors.New("malformed record")

// Exec is a decoded exec record.
type Exec struct {
	Ktime                              uint64
	Pid, Tid, Ppid, NsPid              uint32
	UID, GID, EUID, EGID               uint32
	SUID, SGID, FSUID, FSGID           uint32
	AUID                               uint32
	Flags                              uint32
	CgroupID                           uint64
	CapPermitted, CapEffective, CapInh uint64
	Ns                                 [NsCount]uint32
	CgroupName                         string
	Binary                             string
	Cwd                                string
	// Args is argv as the kernel holds it: NUL-separated, possibly not
	// valid UTF-8, possibly truncated (ExecTruncArgs).
	Args []byte
}

// Exit is a decoded exit record.
type Exit struct {
	Ktime    uint64
	Pid, Tid uint32
	// Code is the wait status: exit code << 8 | terminating signal.
	Code uint32
}

// Fork is a decoded fork record: a new process (not a thread).
type Fork struct {
	Ktime       uint64
	Pid, Tid    uint32
	Ppid, NsPid uint32
}

// Path flags of a hook's string argument (PATH_F_* in bpf/lib/path.h).
const (
	PathTruncated   = 1
	PathDeleted     = 2
	PathUnreachable = 4
)

// HookRecord is a decoded TracingPolicy hook record.
type HookRecord struct {
	Ktime uint64
	// Run is the tag of the agent run whose hook wrote it
	// (sensor.Options.RunTag): after a restart that adopted the base
	// sensor, the previous run's hooks write to the same ring buffer
	// until this run's replace them
	Run      uint16
	Pid, Tid uint32
	HookID   uint32
	Syscall  uint32
	Selector uint32
	Actions  uint32
	Ret      int64
	Ints     [5]int64
	Strs     [2]string
	StrFlags [2]uint16
	// KStack and UStack are stack ids in the hook's stack map, valid when
	// Actions asks for the stack (kernelStackTrace, userStackTrace) and
	// not negative.
	KStack, UStack int32
}

// Decoder decodes raw ring-buffer records. It is not safe for concurrent use:
// it reuses one scratch record, so decoding allocates only the strings.
type Decoder struct {
	exec bpf.ProcessExecRec
	gen  bpf.HookGenRec
}

func asBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func header(raw []byte) (bpf.ProcessRecHeader, error) {
	var h bpf.ProcessRecHeader
	if len(raw) < int(unsafe.Sizeof(h)) {
		return h, fmt.Errorf("%w: %d bytes, shorter than a header", errMalformed, len(raw))
	}
	copy(asBytes(&h), raw)
	if h.Version != RecordVersion {
		return h, fmt.Errorf("%w: format version %d, want %d", errMalformed, h.Version, RecordVersion)
	}
	if int(h.Size) > len(raw) {
		return h, fmt.Errorf("%w: op %d claims %d bytes, has %d", errMalformed, h.Op, h.Size, len(raw))
	}
	return h, nil
}

// Decode decodes one record into an *Exec, *Exit, *Fork, *HookRecord or
// *Loader.
func (d *Decoder) Decode(raw []byte) (any, error) {
	h, err := header(raw)
	if err != nil {
		return nil, err
	}
	switch h.Op {
	case OpExec:
		e, err := d.decodeExec(raw[:h.Size])
		if err != nil {
			return nil, err
		}
		return e, nil
	case OpExit:
		var r bpf.ProcessExitRec
		if err := fixed(raw, &r); err != nil {
			return nil, err
		}
		return &Exit{Ktime: r.Hdr.Ktime, Pid: r.Pid, Tid: r.Tid, Code: r.Code}, nil
	case OpFork:
		var r bpf.ProcessForkRec
		if err := fixed(raw, &r); err != nil {
			return nil, err
		}
		return &Fork{Ktime: r.Hdr.Ktime, Pid: r.Pid, Tid: r.Tid, Ppid: r.Ppid, NsPid: r.Nspid}, nil
	case OpGeneric:
		g, err := d.decodeGeneric(raw[:h.Size])
		if err != nil {
			return nil, err
		}
		return g, nil
	case OpLoader:
		l, err := decodeLoader(raw[:h.Size])
		if err != nil {
			return nil, err
		}
		return l, nil
	default:
		return nil, fmt.Errorf("%w: unknown op %d", errMalformed, h.Op)
	}
}

func fixed[T any](raw []byte, dst *T) error {
	b := asBytes(dst)
	if len(raw) < len(b) {
		return fmt.Errorf("%w: %d bytes, want %d", errMalformed, len(raw), len(b))
	}
	copy(b, raw)
	return nil
}

func (d *Decoder) decodeExec(raw []byte) (*Exec, error) {
	r := &d.exec
	dataOff := int(unsafe.Offsetof(r.Data))
	if len(raw) < dataOff {
		return nil, fmt.Errorf("%w: exec record of %d bytes, want at least %d", errMalformed, len(raw), dataOff)
	}
	copy(asBytes(r), raw)
	data := raw[dataOff:]
	bl, cl, al := int(r.BinaryLen), int(r.CwdLen), int(r.ArgsLen)
	if bl+cl+al > len(data) {
		return nil, fmt.Errorf("%w: exec lengths %d+%d+%d exceed %d data bytes", errMalformed, bl, cl, al, len(data))
	}
	e := &Exec{
		Ktime: r.Hdr.Ktime, Pid: r.Pid, Tid: r.Tid, Ppid: r.Ppid, NsPid: r.Nspid,
		UID: r.Uid, GID: r.Gid, EUID: r.Euid, EGID: r.Egid,
		SUID: r.Suid, SGID: r.Sgid, FSUID: r.Fsuid, FSGID: r.Fsgid,
		AUID: r.Auid, Flags: r.Flags, CgroupID: r.CgroupId,
		CapPermitted: r.CapPermitted, CapEffective: r.CapEffective, CapInh: r.CapInheritable,
		Ns:         r.Ns,
		CgroupName: cString(asBytes(&r.CgroupName)),
		Binary:     string(data[:bl]),
		Cwd:        string(data[bl : bl+cl]),
		Args:       bytes.Clone(data[bl+cl : bl+cl+al]),
	}
	return e, nil
}

func (d *Decoder) decodeGeneric(raw []byte) (*HookRecord, error) {
	r := &d.gen
	dataOff := int(unsafe.Offsetof(r.Data))
	if len(raw) < dataOff {
		return nil, fmt.Errorf("%w: hook record of %d bytes, want at least %d", errMalformed, len(raw), dataOff)
	}
	copy(asBytes(r), raw)
	g := &HookRecord{
		Ktime: r.Hdr.Ktime, Run: r.Hdr.Run, Pid: r.Pid, Tid: r.Tid, HookID: r.HookId, Syscall: r.Syscall,
		Selector: r.Sel, Actions: r.Actions, Ret: r.Ret, Ints: r.Ints, StrFlags: r.StrFlags,
		KStack: r.Kstack, UStack: r.Ustack,
	}
	data := raw[dataOff:]
	const slot = len(r.Data) / 2
	for i, n := range r.StrLen {
		start, end := i*slot, i*slot+int(n)
		if n == 0 {
			continue
		}
		if int(n) > slot || end > len(data) {
			return nil, fmt.Errorf("%w: hook string %d of %d bytes exceeds the record", errMalformed, i, n)
		}
		g.Strs[i] = string(data[start:end])
	}
	return g, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
