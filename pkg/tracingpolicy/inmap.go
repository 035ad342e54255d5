package tracingpolicy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Tetragon's set operators on integers.
const (
	// OpInMap and OpNotInMap hold when the argument is (not) one of the
	// values: integers, inclusive "lo:hi" ranges, or "list:NAME", the
	// system call numbers of a spec.lists entry of type syscalls (as
	// list-syscalls-tracepoint.yaml matches raw_syscalls/sys_enter's id).
	OpInMap    Operator = "InMap"
	OpNotInMap Operator = "NotInMap"
)

// inMapListPrefix marks a value naming a spec.lists entry.
const inMapListPrefix = "list:"

// inMapListRef is where an InMap value names a list, for the check once
// the whole spec (lists may follow the hooks) is read.
type inMapListRef struct {
	name string
	at   Source
}

// InMapList returns the list name of an InMap value "list:NAME".
func InMapList(v string) (string, bool) {
	return strings.CutPrefix(v, inMapListPrefix)
}

// addInMapValues checks the values of an InMap or NotInMap filter on an
// integer argument of type t and adds them, parsed, to a: integers and
// ranges to Ranges, list names to Lists (checked once the whole spec is
// read: lists may follow the hooks).
func (d *decoder) addInMapValues(a *ArgSelector, t ArgType, nodes []*yaml.Node, p fieldPath) {
	for i, v := range a.Values {
		vp := p.field("values").index(i)
		if name, ok := InMapList(v); ok {
			if name == "" {
				d.errorf(nodes[i], vp, "%q names no list (write list:NAME, NAME a spec.lists entry)", v)
				continue
			}
			d.inMapLists = append(d.inMapLists, inMapListRef{name: name, at: d.src(nodes[i], vp)})
			a.Lists = append(a.Lists, name)
			continue
		}
		var r Range
		var err error
		if strings.Contains(v, ":") {
			r.Lo, r.Hi, err = ParseRange(v, t)
		} else {
			r.Lo, err = parseInt(strings.TrimSpace(v), t)
			r.Hi = r.Lo
		}
		if err != nil {
			d.errorf(nodes[i], vp, "%v (InMap takes integers, lo:hi ranges and list:NAME)", err)
			continue
		}
		a.Ranges = append(a.Ranges, r)
	}
}

// checkInMapLists checks the lists InMap values name, once spec.lists is
// read: each must exist and hold system calls, whose numbers are the
// values (Tetragon's list reader gives numbers for syscall lists only).
func (d *decoder) checkInMapLists(s *Spec) {
	for _, r := range d.inMapLists {
		l, ok := s.List(r.name)
		switch {
		case !ok:
			d.add(r.at.Errorf("list %q is not defined in spec.lists", truncate(r.name)))
		case l.Type != ListSyscalls:
			kind := string(l.Type)
			if kind == "" {
				kind = "kernel functions"
			}
			d.add(r.at.Errorf("list %q holds %s: InMap takes a list of type syscalls, whose system call numbers are the values", truncate(r.name), kind))
		}
	}
}
