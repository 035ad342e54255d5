package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// valueOps maps the range, substring and file-type operators to the
// kernel's.
var valueOps = map[tracingpolicy.Operator]sensor.Op{
	tracingpolicy.OpInRange: sensor.OpInRange, tracingpolicy.OpNotInRange: sensor.OpNotInRange,
	tracingpolicy.OpSubString: sensor.OpSubString, tracingpolicy.OpSubStringIgnCase: sensor.OpSubStringIgnCase,
	tracingpolicy.OpFileType: sensor.OpFileType, tracingpolicy.OpNotFileType: sensor.OpNotFileType,
}

// compileValueMatch compiles InRange and NotInRange (integers: each range
// a (lo, hi) pair), SubString and SubStringIgnCase (strings and paths: the
// values go to the LPM trie, lower-cased for IgnCase) and FileType and
// NotFileType (file and path arguments: S_IFMT values). The kernel
// evaluates them in match_int, match_substr and match_file_type
// (bpf/lib/hook.h) on every mechanism.
func compileValueMatch(arg sensor.Arg, slot int, m tracingpolicy.ArgSelector) (sensor.Match, error) {
	op := m.Operator
	cm := sensor.Match{Arg: slot, Op: valueOps[op]}
	if len(m.Values) == 0 && len(m.Ranges) == 0 {
		return cm, fmt.Errorf("operator %s: no values", op)
	}
	isInt := arg.Kind == sensor.KindInt
	switch op {
	case tracingpolicy.OpInRange, tracingpolicy.OpNotInRange:
		if !isInt {
			return cm, fmt.Errorf("operator %s needs an integer argument", op)
		}
		for _, r := range m.Ranges {
			cm.Ints = append(cm.Ints, r.Lo, r.Hi)
		}
		if len(cm.Ints) > sensor.MaxIntValues {
			return cm, fmt.Errorf("operator %s: %d ranges, at most %d in the kernel", op, len(m.Ranges), sensor.MaxIntValues/2)
		}
	case tracingpolicy.OpSubString, tracingpolicy.OpSubStringIgnCase:
		if isInt || sensor.SockSource(arg.Source) {
			return cm, fmt.Errorf("operator %s needs a string or path argument", op)
		}
		for _, v := range m.Values {
			if len(v) > sensor.MaxMatchString {
				return cm, fmt.Errorf("operator %s: substring %.40q... is %d bytes, at most %d can be matched in the kernel", op, v, len(v), sensor.MaxMatchString)
			}
			if op == tracingpolicy.OpSubStringIgnCase {
				v = sensor.ASCIILower(v)
			}
			cm.Strings = append(cm.Strings, v)
		}
	case tracingpolicy.OpFileType, tracingpolicy.OpNotFileType:
		if isInt || sensor.SockSource(arg.Source) {
			return cm, fmt.Errorf("operator %s needs a file or path argument", op)
		}
		cm.Ints = m.IntValues
		if len(cm.Ints) > sensor.MaxIntValues {
			return cm, fmt.Errorf("operator %s: %d file types, at most %d", op, len(cm.Ints), sensor.MaxIntValues)
		}
	}
	return cm, nil
}
