package hooks

import (
	"encoding/binary"

	api "github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// returnCopies reports whether one of d's arguments is read when the call
// returns (returnCopy): the hook then runs at return, whether or not it
// reports the return value (return: true).
func returnCopies(d HookDecl) bool {
	for _, a := range d.Args {
		if a.ReturnCopy {
			return true
		}
	}
	return false
}

// int32ArrSource reads an int32_arr argument: a.Size int32s at the user
// pointer in argument a.Index (a system call's, or a user function's).
// The parser bounds the size to what the kernel reads.
func int32ArrSource(a ArgDecl) sensor.Arg {
	return sensor.Arg{Source: sensor.SrcRegI32Arr, Reg: uint8(a.Index), Kind: sensor.KindPath, Count: uint8(a.Size)}
}

// int32ListArg decodes the int32s the kernel copied (little-endian, as
// x86_64 keeps them); a fault left none.
func int32ListArg(b []byte) *api.KprobeArgument {
	vals := make([]int32, 0, len(b)/4)
	for ; len(b) >= 4; b = b[4:] {
		vals = append(vals, int32(binary.LittleEndian.Uint32(b)))
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_Int32ListArg{Int32ListArg: &api.KprobeInt32List{Values: vals}}}
}
