package tracingpolicy

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// BTFKernel answers Kernel queries from BTF type information, normally the
// running kernel's (/sys/kernel/btf/vmlinux).
type BTFKernel struct {
	spec *btf.Spec
}

// NewBTFKernel wraps an already loaded BTF spec.
func NewBTFKernel(spec *btf.Spec) *BTFKernel { return &BTFKernel{spec: spec} }

// Func implements Kernel.
func (b *BTFKernel) Func(name string) (FuncProto, error) {
	types, err := b.spec.AnyTypesByName(name)
	if errors.Is(err, btf.ErrNotFound) {
		return FuncProto{}, fmt.Errorf("%s: %w", name, ErrFuncNotFound)
	}
	if err != nil {
		return FuncProto{}, fmt.Errorf("looking up %s in BTF: %w", name, err)
	}
	// Several static functions may share a name; they are the same function
	// duplicated, so the first one describes them.
	for _, t := range types {
		fn, ok := t.(*btf.Func)
		if !ok {
			continue
		}
		proto, ok := fn.Type.(*btf.FuncProto)
		if !ok {
			return FuncProto{}, fmt.Errorf("BTF function %s has no prototype", name)
		}
		return funcProto(name, proto), nil
	}
	return FuncProto{}, fmt.Errorf("%s is not a function: %w", name, ErrFuncNotFound)
}

func funcProto(name string, proto *btf.FuncProto) FuncProto {
	out := FuncProto{Name: name, Return: cType(proto.Return)}
	for _, p := range proto.Params {
		out.Params = append(out.Params, Param{Name: p.Name, Type: cType(p.Type), BTF: p.Type})
	}
	return out
}

// RawTracepoint returns the TP_PROTO arguments of tracepoint event, which
// a raw tracepoint program receives. The kernel describes them with the
// typedef btf_trace_<event>, a pointer to a function whose first parameter
// is the tracepoint's private data, not an argument.
func (b *BTFKernel) RawTracepoint(event string) (FuncProto, error) {
	name := "btf_trace_" + event
	var td *btf.Typedef
	if err := b.spec.TypeByName(name, &td); err != nil {
		if errors.Is(err, btf.ErrNotFound) {
			return FuncProto{}, fmt.Errorf("no tracepoint %s in the kernel's BTF (no %s): %w", event, name, ErrFuncNotFound)
		}
		return FuncProto{}, fmt.Errorf("looking up %s in BTF: %w", name, err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return FuncProto{}, fmt.Errorf("BTF %s is not a function pointer", name)
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return FuncProto{}, fmt.Errorf("BTF %s is not a tracepoint prototype", name)
	}
	out := funcProto(event, proto)
	out.Params = out.Params[1:]
	return out, nil
}

// cType reduces a BTF type to what argument checks need.
func cType(t btf.Type) CType {
	c := CType{C: cName(t, 0)}
	switch v := btf.UnderlyingType(t).(type) {
	case nil, *btf.Void:
		c.Kind = CVoid
	case *btf.Int:
		c.Kind, c.Size = CInt, int(v.Size)
	case *btf.Enum:
		c.Kind, c.Size = CInt, int(v.Size)
	case *btf.Pointer:
		c.Kind, c.Pointee = CPointer, baseName(btf.UnderlyingType(v.Target))
	default:
		c.Kind = COther
	}
	return c
}

// baseName names a type the way fits compares pointees.
func baseName(t btf.Type) string {
	switch v := t.(type) {
	case nil, *btf.Void:
		return "void"
	case *btf.Struct:
		return "struct " + v.Name
	case *btf.Union:
		return "union " + v.Name
	case *btf.Enum:
		return "enum " + v.Name
	case *btf.Int:
		return v.Name
	case *btf.Pointer:
		return "pointer"
	case *btf.FuncProto:
		return "function"
	}
	return t.TypeName()
}

// cName spells a type roughly as C would, for messages.
func cName(t btf.Type, depth int) string {
	if depth > 8 {
		return "..."
	}
	switch v := t.(type) {
	case nil, *btf.Void:
		return "void"
	case *btf.Const:
		return "const " + cName(v.Type, depth+1)
	case *btf.Volatile:
		return "volatile " + cName(v.Type, depth+1)
	case *btf.Restrict:
		return cName(v.Type, depth+1)
	case *btf.TypeTag:
		return cName(v.Type, depth+1)
	case *btf.Typedef:
		return v.Name
	case *btf.Pointer:
		return cName(v.Target, depth+1) + " *"
	case *btf.Struct, *btf.Union, *btf.Enum, *btf.Int:
		return baseName(v)
	case *btf.FuncProto:
		return "function"
	}
	return fmt.Sprintf("%v", t)
}
