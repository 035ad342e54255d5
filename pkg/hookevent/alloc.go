package hookevent

import (
	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// A hook event's messages are built in as few allocations as possible: the
// garbage collector's marking was the largest part of the agent's CPU per
// event (issue 16), and it grows with the number of objects. Each helper
// here allocates one struct holding a message, its oneof wrapper and its
// value; the pointers into it keep the whole struct alive, so the event
// holds exactly what it did with separate allocations.

// kprobeEvent is a process_kprobe event in one allocation, with room for
// its arguments (as many as a record carries).
func kprobeEvent() (*api.GetEventsResponse, *api.ProcessKprobe, []*api.KprobeArgument) {
	v := &struct {
		ev   api.GetEventsResponse
		w    api.GetEventsResponse_ProcessKprobe
		k    api.ProcessKprobe
		args [len(observer.HookRecord{}.Ints)]*api.KprobeArgument
	}{}
	v.w.ProcessKprobe = &v.k
	v.ev.Event = &v.w
	return &v.ev, &v.k, v.args[:0]
}

func fileArg(path, flags string) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_FileArg
		f api.KprobeFile
	}{}
	v.f.Path, v.f.Flags = path, flags
	v.w.FileArg = &v.f
	v.a.Arg = &v.w
	return &v.a
}

func pathArg(path, flags string) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_PathArg
		p api.KprobePath
	}{}
	v.p.Path, v.p.Flags = path, flags
	v.w.PathArg = &v.p
	v.a.Arg = &v.w
	return &v.a
}

func stringArg(s string) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_StringArg
	}{}
	v.w.StringArg = s
	v.a.Arg = &v.w
	return &v.a
}

func int32Arg(n int32) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_IntArg
	}{}
	v.w.IntArg = n
	v.a.Arg = &v.w
	return &v.a
}

func uint32Arg(n uint32) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_UintArg
	}{}
	v.w.UintArg = n
	v.a.Arg = &v.w
	return &v.a
}

func longArg(n int64) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_LongArg
	}{}
	v.w.LongArg = n
	v.a.Arg = &v.w
	return &v.a
}

func sizeArg(n uint64) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_SizeArg
	}{}
	v.w.SizeArg = n
	v.a.Arg = &v.w
	return &v.a
}

func bytesArg(b []byte) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_BytesArg
	}{}
	v.w.BytesArg = b
	v.a.Arg = &v.w
	return &v.a
}

func truncatedBytesArg(b []byte, origSize uint64) *api.KprobeArgument {
	v := &struct {
		a api.KprobeArgument
		w api.KprobeArgument_TruncatedBytesArg
		t api.KprobeTruncatedBytes
	}{}
	v.t.BytesArg, v.t.OrigSize = b, origSize
	v.w.TruncatedBytesArg = &v.t
	v.a.Arg = &v.w
	return &v.a
}
