package hooks

import (
	"strconv"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// inMapDecl compiles InMap and NotInMap to the kernel's range match
// (match_int in bpf/lib/hook.h): a value v is the range v:v, a range is
// itself, and list:NAME is the system call numbers of that syscalls list,
// each v:v. Set membership and a union of one-value ranges are the same
// test; the kernel holds sensor.MaxIntValues/2 ranges per filter, and a
// filter with more is refused rather than cut.
func (c *converter) inMapDecl(m tp.ArgSelector) MatchDecl {
	op := tp.OpInRange
	if m.Operator == tp.OpNotInMap {
		op = tp.OpNotInRange
	}
	md := MatchDecl{Index: int(m.Index), Operator: string(op)}
	numbers := syscallNumbers()
	for _, v := range m.Values {
		name, isList := tp.InMapList(v)
		if !isList {
			if _, _, err := tp.ParseRange(v, m.ArgType); err == nil {
				md.Values = append(md.Values, v)
			} else {
				md.Values = append(md.Values, v+":"+v)
			}
			continue
		}
		// the parser checked that the list exists and holds syscalls
		l, _ := c.spec.List(name)
		for _, f := range l.Values {
			nr, ok := numbers[syscallName(f)]
			if !ok {
				c.refuse(m.Src, "list %q: %s is not a system call of this architecture", name, f)
				continue
			}
			n := strconv.FormatUint(uint64(nr), 10)
			md.Values = append(md.Values, n+":"+n)
		}
	}
	if max := sensor.MaxIntValues / 2; len(md.Values) > max {
		c.refuse(m.Src, "operator %s: %d values once lists are expanded, at most %d in the kernel", m.Operator, len(md.Values), max)
	}
	return md
}
