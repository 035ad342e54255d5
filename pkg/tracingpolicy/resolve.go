package tracingpolicy

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// MaxResolveDepth bounds the members a resolve path may name: the kernel
// program follows them one by one, in a loop the verifier walks whole.
const MaxResolveDepth = 8

// ResolveStep is one member of a resolve path, as the kernel program
// follows it: the member's offset is added to the current address, then
// Load bytes are read there (a pointer to follow, or the final integer);
// Load 0 keeps the address (an embedded struct or an array).
type ResolveStep struct {
	Offset uint32
	Load   uint8
}

// checkResolvePath checks a resolve path's syntax: C member names joined
// by dots ("mm.owner.real_parent.comm").
func checkResolvePath(s string) string {
	parts := strings.Split(s, ".")
	if len(parts) > MaxResolveDepth {
		return fmt.Sprintf("it names %d members, at most %d are followed", len(parts), MaxResolveDepth)
	}
	for _, p := range parts {
		if p == "" {
			return "a member name is empty (write members joined by single dots)"
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !isAlnum(c) && c != '_' || i == 0 && c >= '0' && c <= '9' {
				return fmt.Sprintf("%q is not a C member name", truncate(p))
			}
		}
	}
	return ""
}

// ResolvePath follows path (checked by the parser) from a parameter of BTF
// type param, which must point to a struct or union, and returns the
// steps the kernel program takes and the C type of what it ends with, as
// the argument's declared type is checked against: a pointer or integer
// member's value, or, for an embedded struct or an array, a pointer to it
// (a char array is then read as a string, an embedded struct path as a
// path).
func ResolvePath(param btf.Type, path string) ([]ResolveStep, CType, error) {
	ptr, ok := btf.UnderlyingType(param).(*btf.Pointer)
	if !ok {
		return nil, CType{}, fmt.Errorf("resolve %q needs a pointer to a struct, and the parameter is %s", path, cName(param, 0))
	}
	cur := btf.UnderlyingType(ptr.Target)
	var steps []ResolveStep
	var final CType
	names := strings.Split(path, ".")
	for i, name := range names {
		off, mt, err := member(cur, name)
		if err != nil {
			return nil, CType{}, fmt.Errorf("resolve %q: %w", path, err)
		}
		last := i == len(names)-1
		switch v := btf.UnderlyingType(mt).(type) {
		case *btf.Pointer:
			steps = append(steps, ResolveStep{Offset: off, Load: 8})
			if last {
				final = cType(mt)
				break
			}
			cur = btf.UnderlyingType(v.Target)
		case *btf.Int, *btf.Enum:
			if !last {
				return nil, CType{}, fmt.Errorf("resolve %q: member %s is %s, which has no members", path, name, cName(mt, 0))
			}
			size, _ := btf.Sizeof(v)
			if size != 1 && size != 2 && size != 4 && size != 8 {
				return nil, CType{}, fmt.Errorf("resolve %q: member %s is %d bytes wide", path, name, size)
			}
			steps = append(steps, ResolveStep{Offset: off, Load: uint8(size)})
			final = cType(mt)
		case *btf.Struct, *btf.Union:
			// embedded: its members are at the same address plus theirs
			steps = append(steps, ResolveStep{Offset: off})
			cur = v
			if last {
				final = CType{Kind: CPointer, Pointee: baseName(v), C: baseName(v) + " * (the address of member " + name + ")"}
			}
		case *btf.Array:
			if !last {
				return nil, CType{}, fmt.Errorf("resolve %q: member %s is an array, which has no members", path, name)
			}
			elem := baseName(btf.UnderlyingType(v.Type))
			steps = append(steps, ResolveStep{Offset: off})
			final = CType{Kind: CPointer, Pointee: elem, C: elem + " * (the address of array " + name + ")"}
		default:
			return nil, CType{}, fmt.Errorf("resolve %q: member %s is %s, which cannot be read", path, name, cName(mt, 0))
		}
	}
	// consecutive address-only steps add up: fewer steps in the kernel
	var merged []ResolveStep
	for _, s := range steps {
		if n := len(merged); n > 0 && merged[n-1].Load == 0 {
			merged[n-1].Offset += s.Offset
			merged[n-1].Load = s.Load
			continue
		}
		merged = append(merged, s)
	}
	return merged, final, nil
}

// member finds member name of struct or union t, looking into anonymous
// members, and returns its byte offset and type.
func member(t btf.Type, name string) (uint32, btf.Type, error) {
	var members []btf.Member
	var what string
	switch v := t.(type) {
	case *btf.Struct:
		members, what = v.Members, "struct "+v.Name
	case *btf.Union:
		members, what = v.Members, "union "+v.Name
	default:
		return 0, nil, fmt.Errorf("%s has no member %s (it is not a struct or union)", cName(t, 0), name)
	}
	for _, m := range members {
		if m.BitfieldSize != 0 && m.Name == name {
			return 0, nil, fmt.Errorf("member %s of %s is a bit field, which cannot be read", name, what)
		}
		if m.Name == name {
			if m.Offset%8 != 0 {
				return 0, nil, fmt.Errorf("member %s of %s is not byte aligned", name, what)
			}
			return uint32(m.Offset / 8), m.Type, nil
		}
		if m.Name == "" {
			// an anonymous struct or union: its members are this one's
			if off, mt, err := member(btf.UnderlyingType(m.Type), name); err == nil {
				return uint32(m.Offset/8) + off, mt, nil
			}
		}
	}
	return 0, nil, fmt.Errorf("%s has no member %s", what, name)
}
