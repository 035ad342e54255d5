package compiler

import (
	"slices"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// inMap compiles InMap and NotInMap to the kernel's range match
// (match_int in bpf/lib/hook.h): the parser made a value v the range v:v
// and kept a range as it is; each list:NAME adds the system call numbers
// of that syscalls list, each n:n. Set membership and a union of one-value
// ranges are the same test; the kernel holds sensor.MaxIntValues/2 ranges
// per filter, and a filter with more is refused rather than cut.
func (c *converter) inMap(m tp.ArgSelector) tp.ArgSelector {
	out := m
	out.Operator = tp.OpInRange
	if m.Operator == tp.OpNotInMap {
		out.Operator = tp.OpNotInRange
	}
	out.Ranges = slices.Clone(m.Ranges)
	out.Lists = nil
	numbers := syscallNumbers()
	for _, name := range m.Lists {
		// the parser checked that the list exists and holds syscalls
		l, _ := c.spec.List(name)
		for _, f := range l.Values {
			nr, ok := numbers[tp.SyscallName(f)]
			if !ok {
				c.refuse(m.Src, "list %q: %s is not a system call of this architecture", name, f)
				continue
			}
			out.Ranges = append(out.Ranges, tp.Range{Lo: int64(nr), Hi: int64(nr)})
		}
	}
	if max := sensor.MaxIntValues / 2; len(out.Ranges) > max {
		c.refuse(m.Src, "operator %s: %d values once lists are expanded, at most %d in the kernel", m.Operator, len(out.Ranges), max)
	}
	return out
}
