package tracingpolicy

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// NamespaceKinds are the namespace types in the order of the kernel's enum
// ns_kind (bpf/lib/hook.h), which is Tetragon's: a NamespaceChangesSelector's
// Mask has bit i set for NamespaceKinds[i].
var NamespaceKinds = [...]NamespaceType{NsUts, NsIpc, NsMnt, NsPid, NsPidForChildren, NsNet, NsTime, NsTimeForChildren, NsCgroup, NsUser}

// NamespaceChangesSelector is a matchNamespaceChanges entry: In holds when
// one of the listed namespaces differs from the one the process had at
// its exec, NotIn when one of the others does.
type NamespaceChangesSelector struct {
	Operator SetOperator
	// Values as written (namespace types, e.g. Mnt).
	Values []string
	// Mask has bit i set for NamespaceKinds[i] of Values.
	Mask uint32
	Src  Source
}

// matchNamespaceChange decodes a matchNamespaceChanges entry.
func (d *decoder) matchNamespaceChange(n *yaml.Node, p fieldPath) NamespaceChangesSelector {
	s := NamespaceChangesSelector{Src: d.src(n, p)}
	var valueNodes []*yaml.Node
	d.mapping(n, p, []field{
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Operator = d.setOperator(v, fp) }},
		{name: "values", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Values, valueNodes = d.values(v, fp) }},
	})
	for i, v := range s.Values {
		k := slices.Index(NamespaceKinds[:], NamespaceType(v))
		if k < 0 {
			d.errorf(valueNodes[i], p.field("values").index(i), "unknown namespace %q (supported: Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User)", truncate(v))
			continue
		}
		s.Mask |= 1 << k
	}
	return s
}
