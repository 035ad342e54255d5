package hookevent

import (
	"encoding/binary"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/process"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// intArg reports an integer argument in the field Tetragon uses for its
// declared type.
func intArg(typ tracingpolicy.ArgType, v int64) *api.KprobeArgument {
	switch typ {
	case tracingpolicy.TypeUint32, tracingpolicy.TypeUint16, tracingpolicy.TypeUint8:
		return uint32Arg(uint32(v))
	case tracingpolicy.TypeInt64, tracingpolicy.TypeLong:
		return longArg(v)
	case tracingpolicy.TypeSizeT, tracingpolicy.TypeUint64, tracingpolicy.TypeUlong:
		return sizeArg(uint64(v))
	}
	return int32Arg(int32(v))
}

// pathFlags names a path's flags, space-separated; the names of every
// combination are constants, so no event builds them.
func pathFlags(f uint16) string {
	return pathFlagNames[f&(observer.PathDeleted|observer.PathTruncated|observer.PathUnreachable)]
}

// pathFlagNames is indexed by the flags: truncated 1, deleted 2,
// unreachable 4 (TestPathFlags holds them to the observer's values).
var pathFlagNames = [8]string{
	"", "truncated", "deleted", "deleted truncated",
	"unreachable", "truncated unreachable", "deleted unreachable", "deleted truncated unreachable",
}

// syscallIDArg reports a syscall64 value as Tetragon does: the number,
// and the ABI its table belongs to (bit 31 marks a 32-bit call).
func syscallIDArg(v int64) *api.KprobeArgument {
	id := &api.SyscallId{Id: uint32(v), Abi: "x64"}
	if v&sensor.Syscall64Compat != 0 {
		id.Id, id.Abi = uint32(v&^sensor.Syscall64Compat), "i386"
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_SyscallId{SyscallId: id}}
}

// credArg decodes struct cred_data (bpf/hook.c): the eight ids in
// struct cred's order (uid, gid, suid, sgid, euid, egid, fsuid, fsgid),
// then the permitted, effective and inheritable capability sets.
func credArg(b []byte) *api.ProcessCredentials {
	if len(b) < 56 {
		return &api.ProcessCredentials{}
	}
	le := binary.LittleEndian
	id := func(i int) *wrapperspb.UInt32Value { return wrapperspb.UInt32(le.Uint32(b[4*i:])) }
	return &api.ProcessCredentials{
		Uid: id(0), Gid: id(1), Suid: id(2), Sgid: id(3), Euid: id(4), Egid: id(5), Fsuid: id(6), Fsgid: id(7),
		Caps: &api.Capabilities{
			Permitted:   process.CapsList(le.Uint64(b[32:])),
			Effective:   process.CapsList(le.Uint64(b[40:])),
			Inheritable: process.CapsList(le.Uint64(b[48:])),
		},
	}
}

// userNsArg decodes struct userns_data (bpf/hook.c): level, owner,
// group and inode number. Level 0 is the initial user namespace, which is
// the host's.
func userNsArg(b []byte) *api.UserNamespace {
	if len(b) < 16 {
		return &api.UserNamespace{}
	}
	le := binary.LittleEndian
	level := int32(le.Uint32(b))
	return &api.UserNamespace{
		Level: wrapperspb.Int32(level),
		Uid:   wrapperspb.UInt32(le.Uint32(b[4:])),
		Gid:   wrapperspb.UInt32(le.Uint32(b[8:])),
		Ns:    &api.Namespace{Inum: le.Uint32(b[12:]), IsHost: level == 0},
	}
}
