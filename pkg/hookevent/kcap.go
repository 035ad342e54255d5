package hookevent

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// capSetArg reports a capability set as Tetragon does: 16 hex digits, in
// the field of its declared type.
func capSetArg(t tracingpolicy.ArgType, set int64) *api.KprobeArgument {
	s := fmt.Sprintf("%016x", uint64(set))
	switch t {
	case tracingpolicy.TypeCapInheritable:
		return &api.KprobeArgument{Arg: &api.KprobeArgument_CapInheritableArg{CapInheritableArg: s}}
	case tracingpolicy.TypeCapPermitted:
		return &api.KprobeArgument{Arg: &api.KprobeArgument_CapPermittedArg{CapPermittedArg: s}}
	case tracingpolicy.TypeCapEffective:
		return &api.KprobeArgument{Arg: &api.KprobeArgument_CapEffectiveArg{CapEffectiveArg: s}}
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_KernelCapTArg{KernelCapTArg: s}}
}
