package tracingpolicy

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tetragon-lite/tetragon/pkg/usdt"
)

// UsdtSpec is a spec.usdts entry: the USDT probe Provider:Name of the
// binary or library at Path (its .note.stapsdt notes say where).
type UsdtSpec struct {
	Path, Provider, Name string
	Args                 []ArgSpec
	Selectors            []Selector
	Message              string
	Tags                 []string
	Src                  Source
}

// Arg returns the declared argument with index i.
func (u *UsdtSpec) Arg(i uint32) (ArgSpec, bool) { return findArg(u.Args, i) }

// Actions that write the probed thread's registers (uprobes and USDTs).
const (
	// ActionSet writes ArgValue into the USDT argument ArgIndex, where
	// the probe's note puts it.
	ActionSet Action = "Set"
	// ActionRegs writes ArgRegs into the registers (uprobes).
	ActionRegs Action = "Regs"
)

// RegAssign is one argReg entry: "rax:0x123" writes 0x123 into rax.
type RegAssign struct {
	// Reg is the register as written (rax); Offset its offset in the
	// kernel's struct pt_regs.
	Reg    string
	Offset uint16
	Value  uint64
}

func (d *decoder) usdt(n *yaml.Node, p fieldPath) (UsdtSpec, bool) {
	u := UsdtSpec{Src: d.src(n, p)}
	var c common
	before := len(d.errs.Errors)
	name := func(dst *string, what string) field {
		return field{name: what, required: true, decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				*dst = s
				if s == "" || strings.ContainsAny(s, "\x00 :") {
					d.errorf(v, fp, "invalid %s %q: want a non-empty name without spaces or colons", what, truncate(s))
				}
			}
		}}
	}
	fields := append(d.commonFields(&c, hookUsdt),
		field{name: "path", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				u.Path = s
				if !strings.HasPrefix(s, "/") {
					d.errorf(v, fp, "path must be absolute, got %q", truncate(s))
				}
			}
		}},
		name(&u.Provider, "provider"), name(&u.Name, "name"),
	)
	if !d.mapping(n, p, fields) {
		return u, false
	}
	u.Args, u.Message, u.Tags = c.args, c.message, c.tags
	ctx := hookCtx{kind: hookUsdt, args: u.Args, overrideWhy: "Override returns from a function, and a USDT probe is inside one (use Set to change an argument)"}
	u.Selectors = d.selectors(c.selectors, c.selPath, &ctx)
	return u, len(d.errs.Errors) == before
}

// regAssigns decodes an argReg list: "REG:VALUE" entries.
func (d *decoder) regAssigns(n *yaml.Node, p fieldPath) []RegAssign {
	var out []RegAssign
	seen := map[uint16]string{}
	items, nodes := d.strings(n, p, MaxFilters)
	for i, s := range items {
		reg, val, ok := strings.Cut(s, ":")
		off, known := usdt.Register(reg)
		at, ip := nodes[i], p.index(i)
		switch {
		case !ok:
			d.errorf(at, ip, "argReg entry %q: want REGISTER:VALUE (e.g. rax:0x123)", truncate(s))
			continue
		case !known:
			d.errorf(at, ip, "argReg entry %q: unknown x86-64 register %q", truncate(s), truncate(reg))
			continue
		}
		v, err := strconv.ParseUint(val, 0, 64)
		if err != nil {
			n, serr := strconv.ParseInt(val, 0, 64)
			if serr != nil {
				d.errorf(at, ip, "argReg entry %q: value %q is not an integer", truncate(s), truncate(val))
				continue
			}
			v = uint64(n)
		}
		if prev, dup := seen[off]; dup {
			d.errorf(at, ip, "argReg entry %q writes the register %s writes", truncate(s), prev)
			continue
		}
		seen[off] = reg
		out = append(out, RegAssign{Reg: strings.TrimPrefix(reg, "%"), Offset: off, Value: v})
	}
	if len(items) == 0 && n.Kind == yaml.SequenceNode {
		d.errorf(n, p, "argReg lists no registers")
	}
	return out
}

// checkRegAction checks a Set or Regs action against its hook.
func (d *decoder) checkRegAction(a *ActionSelector, n, actionNode, indexNode, valueNode, regsNode *yaml.Node, p fieldPath, h *hookCtx) {
	switch a.Action {
	case ActionSet:
		if h.kind != hookUsdt {
			d.errorf(actionNode, p.field("action"), "action Set changes a USDT probe's argument: usdts only, not %s", hookName(h.kind))
		}
		if indexNode == nil || valueNode == nil {
			d.errorf(n, p, "action Set needs argIndex (the argument to change) and argValue (its new value)")
		} else if _, ok := findArg(h.args, a.ArgIndex); !ok {
			d.errorf(indexNode, p.field("argIndex"), "argIndex %d is not a declared argument (declared: %s)", a.ArgIndex, declaredIndexes(h.args))
		}
	case ActionRegs:
		if h.kind != hookUprobe {
			d.errorf(actionNode, p.field("action"), "action Regs writes a function's registers: uprobes only, not %s", hookName(h.kind))
		}
		if regsNode == nil {
			d.errorf(n, p, "action Regs needs argReg (REGISTER:VALUE entries)")
		}
	}
	for _, f := range []struct {
		node *yaml.Node
		name string
		act  Action
	}{{indexNode, "argIndex", ActionSet}, {valueNode, "argValue", ActionSet}, {regsNode, "argReg", ActionRegs}} {
		if f.node != nil && a.Action != f.act {
			d.errorf(f.node, p.field(f.name), "%s applies to action %s only", f.name, f.act)
		}
	}
}
