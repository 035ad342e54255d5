package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// compileData compiles a kprobe's data: entries into the record slots after
// its arguments', in their order: each is read like an argument whose
// resolve path starts at the current task_struct (sensor.RegTask) rather
// than at a parameter, and the event reports it, with its label, in
// ProcessKprobe.data (not args), as Tetragon does.
func compileData(d Decl, spec *sensor.ProgHookSpec, info *hookInfo, k tracingpolicy.Kernel) error {
	if len(d.Data) == 0 {
		return nil
	}
	tk, ok := k.(tracingpolicy.TaskKernel)
	if !ok {
		return fmt.Errorf("%s: data: source %s needs struct task_struct from the kernel's BTF, which this kernel description lacks", d.Call, tracingpolicy.DataCurrentTask)
	}
	task, err := tk.CurrentTask()
	if err != nil {
		return fmt.Errorf("%s: data: %w", d.Call, err)
	}
	for i, a := range d.Data {
		arg, err := resolveSource(a, tracingpolicy.Param{Name: "current", BTF: task})
		if err != nil {
			return fmt.Errorf("%s: data[%d] (source %s): %w", d.Call, i, tracingpolicy.DataCurrentTask, err)
		}
		arg.Reg = sensor.RegTask
		spec.Args = append(spec.Args, arg)
		info.event.Args = append(info.event.Args, a)
	}
	info.event.DataArgs = len(d.Data)
	if len(spec.Args) > sensor.MaxArgs {
		return fmt.Errorf("%s: %d arguments and data entries, at most %d together", d.Call, len(spec.Args), sensor.MaxArgs)
	}
	return nil
}

// compileDataMatches compiles a selector's matchData entries: filters on
// the data entries' record slots, which follow the arguments' (args holds
// both).
func compileDataMatches(d Decl, ms []tracingpolicy.ArgSelector, args []sensor.Arg) ([]sensor.Match, error) {
	base := len(args) - len(d.Data)
	if base < 0 {
		return nil, fmt.Errorf("matchData: the hook's data entries are not read by this mechanism")
	}
	var out []sensor.Match
	for _, m := range ms {
		if int(m.Index) >= len(d.Data) {
			return nil, fmt.Errorf("matchData index %d: data has %d entries", m.Index, len(d.Data))
		}
		i := base + int(m.Index)
		cm, err := compileMatch(args[i], i, m)
		if err != nil {
			return nil, fmt.Errorf("matchData: %w", err)
		}
		out = append(out, cm)
	}
	return out, nil
}
