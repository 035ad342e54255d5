package tracingpolicy

import (
	"regexp"
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
			case l.Type == ListSyscalls && syscallName(v) == "":
				d.errorf(at, vp, "%q is not a system call (write sys_NAME)", truncate(v))
			case l.Type == ListSyscalls:
			case syscallName(v) != "":
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
	for i := range s.KProbes {
		k := &s.KProbes[i]
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
