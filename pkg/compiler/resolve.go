package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// resolveSource reads argument a through its resolve path: the kernel
// program follows the members from parameter param (whose BTF type the
// path is checked against), and what it ends at is read as a's type, as
// if it were the parameter.
func resolveSource(a tracingpolicy.ArgSpec, param tracingpolicy.Param) (sensor.Arg, error) {
	if param.BTF == nil {
		return sensor.Arg{}, fmt.Errorf("argument %d: resolve needs the parameter's BTF type, which this kernel does not describe", a.Index)
	}
	steps, final, err := tracingpolicy.ResolvePath(param.BTF, a.Resolve)
	if err != nil {
		return sensor.Arg{}, fmt.Errorf("argument %d: %w", a.Index, err)
	}
	if ok, need := tracingpolicy.ArgFits(a.Type, final); !ok {
		return sensor.Arg{}, fmt.Errorf("argument %d: resolve %q ends at %s, and type %s needs %s", a.Index, a.Resolve, final, a.Type, need)
	}
	arg, err := kernelSource(a)
	if err != nil {
		return arg, err
	}
	for _, s := range steps {
		arg.Resolve = append(arg.Resolve, sensor.ResolveStep{Offset: s.Offset, Load: s.Load})
	}
	if len(arg.Resolve) > sensor.MaxResolveSteps {
		return arg, fmt.Errorf("argument %d: resolve %q takes %d steps, at most %d", a.Index, a.Resolve, len(arg.Resolve), sensor.MaxResolveSteps)
	}
	return arg, nil
}
