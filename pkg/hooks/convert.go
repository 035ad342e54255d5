package hooks

import (
	"strings"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

func intArg(typ string, v int64) *api.KprobeArgument {
	switch typ {
	case "uint32", "u32", "uint16", "uint8":
		return &api.KprobeArgument{Arg: &api.KprobeArgument_UintArg{UintArg: uint32(v)}}
	case "int64", "long", "s64":
		return &api.KprobeArgument{Arg: &api.KprobeArgument_LongArg{LongArg: v}}
	case "size_t", "uint64", "u64":
		return &api.KprobeArgument{Arg: &api.KprobeArgument_SizeArg{SizeArg: uint64(v)}}
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_IntArg{IntArg: int32(v)}}
}

func pathFlags(f uint16) string {
	var out []string
	if f&observer.PathDeleted != 0 {
		out = append(out, "deleted")
	}
	if f&observer.PathTruncated != 0 {
		out = append(out, "truncated")
	}
	if f&observer.PathUnreachable != 0 {
		out = append(out, "unreachable")
	}
	return strings.Join(out, " ")
}
