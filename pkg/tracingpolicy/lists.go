package tracingpolicy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxPatternLen bounds a generated_ftrace pattern.
const maxPatternLen = 1024

// lists decodes spec.lists.
func (d *decoder) lists(n *yaml.Node, p fieldPath, s *Spec) {
	seen := map[string]int{}
	d.list(n, p, maxHooks, func(_ int, item *yaml.Node, ip fieldPath) {
		l := ListSpec{Src: d.src(item, ip)}
		var nameNode, valuesNode, patternNode *yaml.Node
		var valueNodes []*yaml.Node
		if !d.mapping(item, ip, []field{
			{name: "name", required: true, decode: func(v *yaml.Node, fp fieldPath) {
				nameNode = v
				l.Name, _ = d.str(v, fp)
			}},
			{name: "type", decode: func(v *yaml.Node, fp fieldPath) {
				if t, ok := d.str(v, fp); ok {
					// Tetragon compares the type case-insensitively
					switch lt := ListType(strings.ToLower(t)); lt {
					case ListPlain, ListSyscalls, ListGeneratedSyscalls, ListGeneratedFtrace:
						l.Type = lt
					default:
						d.errorf(v, fp, "unknown list type %q (supported: syscalls, generated_syscalls, generated_ftrace, or none for kernel functions)", truncate(t))
					}
				}
			}},
			{name: "values", decode: func(v *yaml.Node, fp fieldPath) {
				valuesNode = v
				l.Values, valueNodes = d.strings(v, fp, MaxValues)
			}},
			{name: "pattern", decode: func(v *yaml.Node, fp fieldPath) {
				patternNode = v
				l.Pattern, _ = d.str(v, fp)
			}},
			// set by Tetragon's agent once it has generated the values
			{name: "validated", ignore: true},
		}) || nameNode == nil {
			return
		}
		if l.Name == "" {
			d.errorf(nameNode, ip.field("name"), "must not be empty")
		} else if line, dup := seen[l.Name]; dup {
			d.errorf(nameNode, ip.field("name"), "list %q is defined twice (first at line %d)", truncate(l.Name), line)
		} else {
			seen[l.Name] = nameNode.Line
		}
		if l.Type.Generated() {
			if len(l.Values) > 0 {
				d.errorf(valuesNode, ip.field("values"), "a %s list is generated from the running kernel and takes no values", l.Type)
			}
		} else if valuesNode == nil {
			d.errorf(nameNode, ip, "list %q needs values (or a generated type)", truncate(l.Name))
		}
		switch {
		case l.Type == ListGeneratedFtrace && patternNode == nil:
			d.errorf(nameNode, ip, "a generated_ftrace list needs pattern (a regular expression over available_filter_functions)")
		case l.Type == ListGeneratedFtrace:
			if len(l.Pattern) > maxPatternLen {
				d.errorf(patternNode, ip.field("pattern"), "pattern is %d bytes long, at most %d are allowed", len(l.Pattern), maxPatternLen)
			} else if _, err := regexp.Compile(l.Pattern); err != nil {
				d.errorf(patternNode, ip.field("pattern"), "invalid regular expression: %v", err)
			} else if l.Pattern == "" {
				d.errorf(patternNode, ip.field("pattern"), "must not be empty")
			}
		case patternNode != nil:
			d.errorf(patternNode, ip.field("pattern"), "pattern applies to generated_ftrace lists only")
		}
		for i, v := range l.Values {
			if l.Type.Generated() {
				break // refused above
			}
			at, vp := valueNodes[i], ip.field("values").index(i)
			switch {
			case l.Type == ListSyscalls && strings.HasPrefix(v, "__ia32_"):
				d.errorf(at, vp, "%q is a 32-bit system call entry point, which this agent does not hook", truncate(v))
			case l.Type == ListSyscalls && SyscallName(v) == "":
				d.errorf(at, vp, "%q is not a system call (write sys_NAME)", truncate(v))
			case l.Type == ListSyscalls:
			case SyscallName(v) != "":
				d.errorf(at, vp, "%q is a system call: system calls go in a list of type syscalls, and cannot be mixed with kernel functions", truncate(v))
			default:
				if msg := checkSymbol(v); msg != "" {
					d.errorf(at, vp, "invalid function name %q: %s", truncate(v), msg)
				}
			}
		}
		s.Lists = append(s.Lists, l)
	})
}

// checkListCalls checks the kprobes whose call is "list:NAME" against
// spec.lists, once the whole spec is read (lists may follow kprobes), and
// sets each one's Syscall from its list's kind.
func (d *decoder) checkListCalls(s *Spec) {
	var probes []*KProbeSpec
	for i := range s.KProbes {
		probes = append(probes, &s.KProbes[i])
	}
	for i := range s.Fentries {
		probes = append(probes, &s.Fentries[i])
	}
	for _, k := range probes {
		if k.List == "" {
			continue
		}
		at := d.listCalls[k.Src]
		l, ok := s.List(k.List)
		if !ok {
			d.add(at.call.Errorf("list %q is not defined in spec.lists", truncate(k.List)))
			continue
		}
		syscalls := l.Type.Syscalls()
		if at.syscall != nil && k.Syscall != syscalls {
			kind := "kernel functions"
			if syscalls {
				kind = "system calls"
			}
			d.add(at.syscall.Errorf("list %q holds %s (type %q), which syscall: %t contradicts", truncate(k.List), kind, string(l.Type), k.Syscall))
		}
		k.Syscall = syscalls
		if syscalls {
			for _, a := range k.Args {
				if kernelObject(a.Type) {
					d.add(a.TypeSrc.Errorf("type %s reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)", a.Type))
				}
			}
			continue
		}
		// Override works on security_* functions only, so every function
		// of the list must be one, which a generated list cannot promise
		for _, sel := range k.Selectors {
			for _, a := range sel.MatchActions {
				if a.Action != ActionOverride {
					continue
				}
				for _, v := range l.Values {
					if !strings.HasPrefix(v, "security_") {
						d.add(a.Src.Errorf("Override works only on system calls and security_* functions, and list %q holds %q", truncate(k.List), truncate(v)))
						break
					}
				}
				if l.Type.Generated() {
					d.add(a.Src.Errorf("Override works only on system calls and security_* functions, which a %s list cannot promise", l.Type))
				}
			}
		}
	}
}

// Selector macros (spec.selectorsMacros, Tetragon 1.6): named selector
// fragments a selector pulls in with macros: [NAME, ...]. The expansion is
// purely textual, done on the YAML before the selector is decoded, so a
// macro's filters are checked against each hook that uses them and their
// errors point into the macro's text. As in Tetragon, a filter list (say
// matchArgs) may come from the selector or from one macro, not from both,
// and a macro cannot use macros.

// scanMacros records the spec's selectorsMacros before the spec is decoded,
// since hooks may come before the macros in the file.
func (d *decoder) scanMacros(n *yaml.Node) {
	d.macros = nil
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !strings.EqualFold(k.Value, "selectorsMacros") {
			continue
		}
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.MappingNode {
			return // reported by macrosField
		}
		d.macros = map[string]*yaml.Node{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			mv := v.Content[j+1]
			if mv.Kind == yaml.AliasNode && mv.Alias != nil {
				mv = mv.Alias
			}
			if _, dup := d.macros[v.Content[j].Value]; !dup {
				d.macros[v.Content[j].Value] = mv
			}
		}
		return
	}
}

// macrosField checks spec.selectorsMacros' shape; each macro's filters are
// checked where a selector uses it.
func (d *decoder) macrosField(n *yaml.Node, p fieldPath) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "must be a mapping of macro names to selectors, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for _, pr := range d.pairs(n, p, 0) {
		k := pr.key
		name := k.Value
		mp := p.field(name)
		if line, dup := seen[name]; dup {
			d.errorf(k, mp, "macro %q is defined twice (first at line %d)", truncate(name), line)
			continue
		}
		seen[name] = k.Line
		v := d.deref(pr.value, mp)
		if v == nil {
			continue
		}
		if v.Kind != yaml.MappingNode {
			d.errorf(v, mp, "a macro must be a selector (a mapping), got %s", describe(v))
			continue
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			if strings.EqualFold(v.Content[i].Value, "macros") {
				d.errorf(v.Content[i], mp.field("macros"), "a macro cannot use other macros")
			}
		}
	}
}

// expandMacros returns selector n with the macros it names merged in.
func (d *decoder) expandMacros(n *yaml.Node, p fieldPath) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return n
	}
	at := -1
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && strings.EqualFold(k.Value, "macros") {
			at = i
			break
		}
	}
	if at < 0 {
		return n
	}
	mp := p.field("macros")
	names, nodes := d.strings(n.Content[at+1], mp, MaxFilters)
	out := *n
	out.Content = append(append([]*yaml.Node{}, n.Content[:at]...), n.Content[at+2:]...)
	from := map[string]string{} // filter key -> who set it
	for i := 0; i+1 < len(out.Content); i += 2 {
		from[strings.ToLower(out.Content[i].Value)] = "the selector"
	}
	for i, name := range names {
		m, ok := d.macros[name]
		if !ok {
			if len(d.macros) == 0 {
				d.errorf(nodes[i], mp.index(i), "macro %q is used, but spec.selectorsMacros defines no macros", truncate(name))
			} else {
				d.errorf(nodes[i], mp.index(i), "undefined macro %q (spec.selectorsMacros defines %s)", truncate(name), macroNames(d.macros))
			}
			continue
		}
		if m.Kind != yaml.MappingNode {
			continue // reported by macrosField
		}
		// each use copies the macro's keys: charged like a visit, so that
		// a large macro used by every selector cannot multiply the work
		if !d.charge(m, mp.index(i), len(m.Content)/2) {
			return &out
		}
		for j := 0; j+1 < len(m.Content); j += 2 {
			key := strings.ToLower(m.Content[j].Value)
			if key == "macros" {
				continue // reported by macrosField
			}
			if who, dup := from[key]; dup {
				d.errorf(nodes[i], mp.index(i), "macro %q sets %s, which %s sets too (a filter list comes from one place)", truncate(name), m.Content[j].Value, who)
				continue
			}
			from[key] = fmt.Sprintf("macro %q", truncate(name))
			out.Content = append(out.Content, m.Content[j], m.Content[j+1])
		}
	}
	return &out
}

func macroNames(m map[string]*yaml.Node) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, strconv.Quote(truncate(n)))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
