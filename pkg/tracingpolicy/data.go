package tracingpolicy

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
	"go.yaml.in/yaml/v3"
)

// Data sources of a kprobe's data: entries, as Tetragon names them.
const (
	// DataCurrentTask reads a value through a resolve path from the
	// current task_struct (the calling thread), whatever the function's
	// parameters are.
	DataCurrentTask = "current_task"
	// dataPtRegs reads a register of the probed context (resolve names
	// the register); not built.
	dataPtRegs = "pt_regs"
)

// dataEntries decodes a kprobe's data list. Each entry is read like an
// argument and reported after the arguments, with its label; matchData
// filters it by its position in the list (Tetragon's matchData index and
// args "denote the argument position within the spec"), which becomes
// its Index. The entry's own index field is accepted and not used: the
// source, not a parameter, says where the value comes from.
func (d *decoder) dataEntries(n *yaml.Node, p fieldPath) []ArgSpec {
	var out []ArgSpec
	d.list(n, p, MaxArgs, func(i int, v *yaml.Node, ip fieldPath) {
		a := d.dataEntry(v, ip)
		// kept even when invalid (empty Type), so that a matchData on it
		// is not also reported as naming an undeclared entry
		a.Index = uint32(i)
		out = append(out, a)
	})
	return out
}

func (d *decoder) dataEntry(n *yaml.Node, p fieldPath) ArgSpec {
	a := ArgSpec{Src: d.src(n, p)}
	var source string
	var sourceNode, typeNode, resolveNode *yaml.Node
	ok := d.mapping(n, p, []field{
		{name: "index", decode: func(v *yaml.Node, fp fieldPath) { _, _ = d.integer(v, fp, 0, 1<<31-1) }},
		{name: "type", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			typeNode = v
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			t := canonicalType(s)
			if _, ok := lookupType(t); ok {
				a.Type, a.TypeSrc = t, d.src(v, fp)
				return
			}
			if unsupportedType(s) {
				d.errorf(v, fp, "type %q is not supported by this agent (supported: %s)", s, supportedTypeNames)
				return
			}
			d.errorf(v, fp, "unknown type %q (supported: %s)", truncate(s), supportedTypeNames)
		}},
		{name: "source", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			sourceNode = v
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			switch s {
			case DataCurrentTask:
				source = s
			case dataPtRegs:
				d.errorf(v, fp, "source %s (a register of the probed context) is not supported by this agent (supported: %s)", s, DataCurrentTask)
			default:
				d.errorf(v, fp, "unknown source %q (supported: %s)", truncate(s), DataCurrentTask)
			}
		}},
		{name: "resolve", decode: func(v *yaml.Node, fp fieldPath) {
			resolveNode = v
			if s, ok := d.str(v, fp); ok {
				if msg := checkResolvePath(s); msg != "" {
					d.errorf(v, fp, "invalid resolve path %q: %s", truncate(s), msg)
					return
				}
				a.Resolve = s
			}
		}},
		{name: "label", decode: func(v *yaml.Node, fp fieldPath) { a.Label, _ = d.str(v, fp) }},
		{name: "maxData"}, {name: "returnCopy"}, {name: "sizeArgIndex"}, {name: "size"}, {name: "btfType"},
	})
	if !ok {
		return a
	}
	if source == DataCurrentTask && resolveNode == nil {
		d.errorf(sourceNode, p.field("source"), "source %s needs resolve, the path of task_struct members to read (cred.euid.val)", DataCurrentTask)
	}
	switch a.Type {
	case TypeCharBuf, TypeInt32Arr, TypeNop, TypeSyscall64:
		// a buffer needs a size, nop reads nothing, syscall64 is a
		// tracepoint field
		d.errorf(typeNode, p.field("type"), "type %s cannot be a data entry (a resolve path ends at an integer, a string or a kernel object)", a.Type)
		a.Type = ""
	}
	return a
}

// matchData decodes a matchData entry: a matchArgs entry on the hook's
// data entries, by position.
func (d *decoder) matchData(n *yaml.Node, p fieldPath, h *hookCtx) (ArgSelector, bool) {
	if h.kind != hookKprobe || len(h.data) == 0 {
		d.errorf(n, p, "matchData filters the hook's data entries, and this hook declares none (data: is read on kprobes)")
		return ArgSelector{Src: d.src(n, p)}, false
	}
	dc := hookCtx{kind: h.kind, args: h.data, isData: true}
	return d.matchArg(n, p, &dc, false)
}

// TaskKernel is a Kernel that also describes struct task_struct, where a
// data: entry with source current_task starts its resolve path.
type TaskKernel interface {
	Kernel
	// CurrentTask returns the BTF type struct task_struct *.
	CurrentTask() (btf.Type, error)
}

// CurrentTask implements TaskKernel.
func (b *BTFKernel) CurrentTask() (btf.Type, error) {
	var task *btf.Struct
	if err := b.spec.TypeByName("task_struct", &task); err != nil {
		return nil, fmt.Errorf("struct task_struct in the kernel's BTF: %w", err)
	}
	return &btf.Pointer{Target: task}, nil
}
