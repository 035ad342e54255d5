package compiler

import (
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// returnCopies reports whether one of d's arguments is read when the call
// returns (returnCopy): the hook then runs at return, whether or not it
// reports the return value (return: true).
func returnCopies(d Decl) bool {
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
func int32ArrSource(a tracingpolicy.ArgSpec) sensor.Arg {
	return sensor.Arg{Source: sensor.SrcRegI32Arr, Reg: uint8(a.Index), Kind: sensor.KindPath, Count: uint8(a.Size)}
}
