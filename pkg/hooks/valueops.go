package hooks

import (
	"fmt"
	"strconv"
	"strings"

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

// compileValueMatch compiles InRange and NotInRange (integers: "lo:hi"
// values become (lo, hi) pairs), SubString and SubStringIgnCase (strings
// and paths: the values go to the LPM trie, lower-cased for IgnCase) and
// FileType and NotFileType (file and path arguments: S_IFMT values). The
// kernel evaluates them in match_int, match_substr and match_file_type
// (bpf/lib/hook.h) on every mechanism.
func compileValueMatch(arg sensor.Arg, slot int, op tracingpolicy.Operator, values []string) (sensor.Match, error) {
	cm := sensor.Match{Arg: slot, Op: valueOps[op]}
	if len(values) == 0 {
		return cm, fmt.Errorf("operator %s: no values", op)
	}
	isInt := arg.Kind == sensor.KindInt
	switch op {
	case tracingpolicy.OpInRange, tracingpolicy.OpNotInRange:
		if !isInt {
			return cm, fmt.Errorf("operator %s needs an integer argument", op)
		}
		for _, v := range values {
			lo, hi, err := parseRange(v)
			if err != nil {
				return cm, fmt.Errorf("operator %s: %w", op, err)
			}
			cm.Ints = append(cm.Ints, lo, hi)
		}
		if len(cm.Ints) > sensor.MaxIntValues {
			return cm, fmt.Errorf("operator %s: %d ranges, at most %d in the kernel", op, len(values), sensor.MaxIntValues/2)
		}
	case tracingpolicy.OpSubString, tracingpolicy.OpSubStringIgnCase:
		if isInt || sensor.SockSource(arg.Source) {
			return cm, fmt.Errorf("operator %s needs a string or path argument", op)
		}
		for _, v := range values {
			if v == "" {
				return cm, fmt.Errorf("operator %s: an empty substring occurs in every string", op)
			}
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
		for _, v := range values {
			t, err := tracingpolicy.ParseFileType(v)
			if err != nil {
				return cm, fmt.Errorf("operator %s: %w", op, err)
			}
			cm.Ints = append(cm.Ints, int64(t))
		}
		if len(cm.Ints) > sensor.MaxIntValues {
			return cm, fmt.Errorf("operator %s: %d file types, at most %d", op, len(cm.Ints), sensor.MaxIntValues)
		}
	}
	return cm, nil
}

// parseRange parses "lo:hi" with integer bounds as the policy parser
// checked them against the argument's type (which ordered them); here an
// unsigned bound above MaxInt64 keeps its bit pattern.
func parseRange(s string) (lo, hi int64, err error) {
	l, h, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range: want lo:hi", s)
	}
	if lo, err = parseBound(strings.TrimSpace(l)); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	if hi, err = parseBound(strings.TrimSpace(h)); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	return lo, hi, nil
}

func parseBound(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 0, 64)
	if err == nil {
		return n, nil
	}
	u, uerr := strconv.ParseUint(s, 0, 64)
	if uerr != nil {
		return 0, fmt.Errorf("bound %q is not an integer", s)
	}
	return int64(u), nil
}
