package tracingpolicy

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

type hookKind int

const (
	hookKprobe hookKind = iota
	hookTracepoint
	hookLsm
	hookUprobe
	hookUsdt
)

// hookCtx is what selector validation needs to know about the hook.
type hookCtx struct {
	kind hookKind
	args []ArgSpec
	// ret is set when the hook reports a return value.
	ret    bool
	retArg *ArgSpec
	// override says whether Override can work here, and if not, why.
	override    bool
	overrideWhy string
	// data are the kprobe's data: entries (Index: position), which
	// matchData filters; isData marks the context of a matchData entry.
	data   []ArgSpec
	isData bool
}

// common holds the fields every hook kind shares.
type common struct {
	args      []ArgSpec
	selectors *yaml.Node
	selPath   fieldPath
	message   string
	tags      []string
}

// commonFields returns the field decoders shared by all hook kinds; the
// selectors node is kept for later, once args and return are known whatever
// the key order.
func (d *decoder) commonFields(c *common, k hookKind) []field {
	return []field{
		{name: "args", decode: func(v *yaml.Node, fp fieldPath) { c.args = d.args(v, fp, k) }},
		{name: "selectors", decode: func(v *yaml.Node, fp fieldPath) { c.selectors, c.selPath = v, fp }},
		{name: "message", decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				if n := utf8.RuneCountInString(s); n > MaxMessageLen {
					d.errorf(v, fp, "message has %d characters, at most %d are allowed", n, MaxMessageLen)
				}
				c.message = s
			}
		}},
		{name: "tags", decode: func(v *yaml.Node, fp fieldPath) { c.tags, _ = d.strings(v, fp, MaxTags) }},
	}
}

func (d *decoder) kprobe(n *yaml.Node, p fieldPath) (KProbeSpec, bool) {
	k := KProbeSpec{Syscall: true, Src: d.src(n, p)}
	var c common
	var callNode, syscallNode, retActionNode *yaml.Node
	var callSrc Source
	var syscallSrc *Source
	before := len(d.errs.Errors)
	fields := append(d.commonFields(&c, hookKprobe),
		field{name: "call", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			callNode = v
			if s, ok := d.str(v, fp); ok {
				k.Call = s
				callSrc = d.src(v, fp)
				if name, isList := strings.CutPrefix(s, ListPrefix); isList {
					// checked against spec.lists once the spec is read
					k.List = name
					if name == "" {
						d.errorf(v, fp, "%q names no list (write list:NAME with a spec.lists name)", s)
					}
				} else if msg := checkSymbol(s); msg != "" {
					d.errorf(v, fp, "invalid function name %q: %s", truncate(s), msg)
				}
			}
		}},
		field{name: "syscall", decode: func(v *yaml.Node, fp fieldPath) {
			syscallNode = v
			k.Syscall, _ = d.boolean(v, fp)
			src := d.src(v, fp)
			syscallSrc = &src
		}},
		field{name: "return", decode: func(v *yaml.Node, fp fieldPath) { k.Return, _ = d.boolean(v, fp) }},
		field{name: "returnArg", decode: func(v *yaml.Node, fp fieldPath) {
			if a, ok, _ := d.arg(v, fp, hookKprobe, true); ok {
				k.ReturnArg = &a
			}
		}},
		field{name: "returnArgAction", decode: func(v *yaml.Node, fp fieldPath) {
			retActionNode = v
			if s, ok := d.str(v, fp); ok {
				switch s {
				case ReturnArgPost, ReturnArgTrackSock, ReturnArgUntrackSock:
					k.ReturnArgAction = s
				default:
					d.errorf(v, fp, "unknown returnArgAction %q (supported: Post, TrackSock, UntrackSock)", truncate(s))
				}
			}
		}},
		field{name: "ignore", decode: func(v *yaml.Node, fp fieldPath) {
			d.mapping(v, fp, []field{{name: "callNotFound", decode: func(v *yaml.Node, fp fieldPath) {
				k.IgnoreCallNotFound, _ = d.boolean(v, fp)
			}}})
		}},
		field{name: "data", decode: func(v *yaml.Node, fp fieldPath) { k.Data = d.dataEntries(v, fp) }},
	)
	if !d.mapping(n, p, fields) {
		return k, false
	}
	k.Args, k.Message, k.Tags = c.args, c.message, c.tags

	isList := strings.HasPrefix(k.Call, ListPrefix)
	if k.List != "" {
		if d.listCalls == nil {
			d.listCalls = map[Source]listCall{}
		}
		d.listCalls[k.Src] = listCall{call: callSrc, syscall: syscallSrc}
	}
	if !isList && k.Call != "" && k.Syscall && SyscallName(k.Call) == "" {
		at, atPath := callNode, p.field("call")
		if syscallNode != nil {
			at, atPath = syscallNode, p.field("syscall")
		}
		why := "syscall defaults to true, set"
		if syscallNode != nil {
			why = "set"
		}
		d.errorf(at, atPath, "%q is not a system call: %s \"syscall: false\" to probe a kernel function", truncate(k.Call), why)
	}
	if k.Syscall && !isList {
		for _, a := range k.Args {
			if kernelObject(a.Type) {
				d.add(a.TypeSrc.Errorf("type %s reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)", a.Type))
			}
		}
	}
	if k.ReturnArg != nil && !k.Return {
		// Tetragon reads returnArg only with return: true and ignores it
		// otherwise (its examples security_bprm_check.yaml and
		// security_inode_follow_link.yaml declare one on an entry probe):
		// so does this agent. matchReturnArgs still needs return: true.
		k.ReturnArg = nil
	}
	if k.ReturnArgAction != "" && !k.Return {
		d.errorf(retActionNode, p.field("returnArgAction"), "returnArgAction needs \"return: true\"")
	} else if (k.ReturnArgAction == ReturnArgTrackSock || k.ReturnArgAction == ReturnArgUntrackSock) &&
		(k.ReturnArg == nil || k.ReturnArg.Type != TypeSock) {
		d.errorf(retActionNode, p.field("returnArgAction"), "returnArgAction %s needs a returnArg of type sock (the function returns the socket, as sk_alloc)", k.ReturnArgAction)
	}
	ctx := hookCtx{kind: hookKprobe, args: k.Args, ret: k.Return, retArg: k.ReturnArg, data: k.Data}
	switch {
	case isList:
		// the list's kind decides: checked by checkListCalls
		ctx.override = true
	case k.Syscall, strings.HasPrefix(k.Call, "security_"):
		ctx.override = true
	default:
		ctx.overrideWhy = "Override works only on system calls (syscall: true) and security_* functions"
	}
	k.Selectors = d.selectors(c.selectors, c.selPath, &ctx)
	return k, len(d.errs.Errors) == before
}

// tracepoint decodes a tracepoints: entry, or, with rawList, a
// rawtracepoints: entry, which is always read as a raw tracepoint.
func (d *decoder) tracepoint(n *yaml.Node, p fieldPath, rawList bool) (TracepointSpec, bool) {
	t := TracepointSpec{Src: d.src(n, p), Raw: rawList}
	var c common
	before := len(d.errs.Errors)
	name := func(dst *string) func(v *yaml.Node, fp fieldPath) {
		return func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				*dst = s
				if msg := checkTracepointName(s); msg != "" {
					d.errorf(v, fp, "invalid name %q: %s", truncate(s), msg)
				}
			}
		}
	}
	fields := append(d.commonFields(&c, hookTracepoint),
		field{name: "subsystem", required: true, decode: name(&t.Subsystem)},
		field{name: "event", required: true, decode: name(&t.Event)},
		field{name: "raw", decode: func(v *yaml.Node, fp fieldPath) {
			raw, ok := d.boolean(v, fp)
			if ok && rawList && !raw {
				d.errorf(v, fp, "rawtracepoints are raw tracepoints; raw: false belongs in tracepoints")
				return
			}
			t.Raw = raw || rawList
		}},
	)
	if !d.mapping(n, p, fields) {
		return t, false
	}
	t.Args, t.Message, t.Tags = c.args, c.message, c.tags
	ctx := hookCtx{kind: hookTracepoint, args: t.Args, overrideWhy: "Override is not possible on tracepoints"}
	t.Selectors = d.selectors(c.selectors, c.selPath, &ctx)
	return t, len(d.errs.Errors) == before
}

func (d *decoder) lsmhook(n *yaml.Node, p fieldPath) (LsmHookSpec, bool) {
	l := LsmHookSpec{Src: d.src(n, p)}
	var c common
	before := len(d.errs.Errors)
	fields := append(d.commonFields(&c, hookLsm),
		field{name: "hook", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				l.Hook = s
				if rest, found := strings.CutPrefix(s, "security_"); found {
					d.errorf(v, fp, "LSM hooks are named without the security_ prefix (%q, not %q)", rest, truncate(s))
				} else if msg := checkTracepointName(s); msg != "" {
					d.errorf(v, fp, "invalid hook name %q: %s", truncate(s), msg)
				}
			}
		}},
	)
	if !d.mapping(n, p, fields) {
		return l, false
	}
	l.Args, l.Message, l.Tags = c.args, c.message, c.tags
	ctx := hookCtx{kind: hookLsm, args: l.Args, override: true}
	l.Selectors = d.selectors(c.selectors, c.selPath, &ctx)
	return l, len(d.errs.Errors) == before
}

func (d *decoder) uprobe(n *yaml.Node, p fieldPath) (UProbeSpec, bool) {
	u := UProbeSpec{Src: d.src(n, p)}
	var c common
	var symNode, offNode *yaml.Node
	before := len(d.errs.Errors)
	fields := append(d.commonFields(&c, hookUprobe),
		field{name: "path", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				u.Path = s
				if !strings.HasPrefix(s, "/") {
					d.errorf(v, fp, "path must be absolute, got %q", truncate(s))
				}
			}
		}},
		field{name: "symbols", decode: func(v *yaml.Node, fp fieldPath) {
			symNode = v
			var nodes []*yaml.Node
			u.Symbols, nodes = d.strings(v, fp, maxHooks)
			for i, s := range u.Symbols {
				if msg := checkELFSymbol(s); msg != "" {
					d.errorf(nodes[i], fp.index(i), "invalid symbol %q: %s", truncate(s), msg)
				}
			}
		}},
		field{name: "offsets", decode: func(v *yaml.Node, fp fieldPath) {
			offNode = v
			d.list(v, fp, maxHooks, func(_ int, item *yaml.Node, ip fieldPath) {
				if o, ok := d.uint64(item, ip); ok {
					u.Offsets = append(u.Offsets, o)
				}
			})
		}},
		field{name: "return", decode: func(v *yaml.Node, fp fieldPath) { u.Return, _ = d.boolean(v, fp) }},
		field{name: "returnArg", decode: func(v *yaml.Node, fp fieldPath) {
			if a, ok, _ := d.arg(v, fp, hookUprobe, true); ok {
				u.ReturnArg = &a
			}
		}},
		field{name: "resolvePathInContainer", decode: func(v *yaml.Node, fp fieldPath) {
			u.ResolvePathInContainer, _ = d.boolean(v, fp)
			u.ResolvePathSrc = d.src(v, fp)
		}},
		field{name: "addrs"}, field{name: "refCtrOffsets"}, field{name: "btfPath"}, field{name: "data"},
	)
	if !d.mapping(n, p, fields) {
		return u, false
	}
	u.Args, u.Message, u.Tags = c.args, c.message, c.tags
	switch {
	case symNode != nil && offNode != nil:
		d.errorf(offNode, p.field("offsets"), "set either symbols or offsets, not both")
	case len(u.Symbols) == 0 && len(u.Offsets) == 0 && symNode == nil && offNode == nil:
		d.errorf(n, p, "missing required field \"symbols\" (or \"offsets\")")
	}
	if u.ReturnArg != nil && !u.Return {
		// ignored without return: true, as on kprobes (and in Tetragon)
		u.ReturnArg = nil
	}
	// Override returns from the function without running it: the
	// loader refuses it where the kernel cannot (pkg/hooks)
	ctx := hookCtx{kind: hookUprobe, args: u.Args, ret: u.Return, retArg: u.ReturnArg, override: true}
	u.Selectors = d.selectors(c.selectors, c.selPath, &ctx)
	return u, len(d.errs.Errors) == before
}

// kernelObject reports types that read kernel structures, which a system
// call's arguments never are.
func kernelObject(t ArgType) bool {
	switch t {
	case TypeFile, TypePath, TypeDentry, TypeFilename, TypeSock, TypeSkb, TypeBpfMap, TypePerfEvent, TypeDns:
		return true
	}
	return false
}

// args decodes a hook's args list.
func (d *decoder) args(n *yaml.Node, p fieldPath, k hookKind) []ArgSpec {
	var out []ArgSpec
	seen := map[uint32]int{}
	d.list(n, p, MaxArgs, func(i int, v *yaml.Node, ip fieldPath) {
		a, _, indexed := d.arg(v, ip, k, false)
		if !indexed {
			return
		}
		// An argument with an invalid type is kept (with an empty Type) so
		// that selectors referring to it are not also reported as
		// referring to an undeclared argument.
		if prev, dup := seen[a.Index]; dup {
			d.errorf(v, ip, "argument index %d is already declared by args[%d]", a.Index, prev)
			return
		}
		seen[a.Index] = i
		out = append(out, a)
	})
	// Check sizeArgIndex once all indexes are known.
	for _, a := range out {
		if a.SizeArgIndex == 0 {
			continue
		}
		if a.SizeArgIndex == a.Index+1 {
			d.add(a.Src.Errorf("sizeArgIndex %d points at the buffer itself (sizeArgIndex is the size argument's index + 1)", a.SizeArgIndex))
		}
	}
	return out
}

// arg decodes one argument declaration; ret marks a returnArg. indexed
// reports whether the index was read.
func (d *decoder) arg(n *yaml.Node, p fieldPath, k hookKind, ret bool) (a ArgSpec, ok, indexed bool) {
	a = ArgSpec{Src: d.src(n, p)}
	before := len(d.errs.Errors)
	maxIndex := int64(MaxArgIndex)
	if k == hookTracepoint {
		maxIndex = MaxTracepointArgIndex
	}
	var sizeNode, copyNode, maxDataNode, typeNode, arrSizeNode *yaml.Node
	ok = d.mapping(n, p, []field{
		{name: "index", required: !ret, decode: func(v *yaml.Node, fp fieldPath) {
			if ret {
				// A return value has no position; Tetragon requires the
				// field and ignores it.
				_, _ = d.integer(v, fp, 0, 1<<31-1)
				return
			}
			if i, ok := d.integer(v, fp, 0, maxIndex); ok {
				a.Index = uint32(i)
				indexed = true
			}
		}},
		{name: "type", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			typeNode = v
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			t := canonicalType(s)
			if _, ok := lookupType(t); ok {
				a.Type = t
				a.TypeSrc = d.src(v, fp)
				return
			}
			if unsupportedType(s) {
				d.errorf(v, fp, "type %q is not supported by this agent (supported: %s)", s, supportedTypeNames)
				return
			}
			d.errorf(v, fp, "unknown type %q (supported: %s)", truncate(s), supportedTypeNames)
		}},
		{name: "label", decode: func(v *yaml.Node, fp fieldPath) { a.Label, _ = d.str(v, fp) }},
		{name: "maxData", decode: func(v *yaml.Node, fp fieldPath) { maxDataNode = v; a.MaxData, _ = d.boolean(v, fp) }},
		{name: "returnCopy", decode: func(v *yaml.Node, fp fieldPath) { copyNode = v; a.ReturnCopy, _ = d.boolean(v, fp) }},
		{name: "sizeArgIndex", decode: func(v *yaml.Node, fp fieldPath) {
			sizeNode = v
			if i, ok := d.integer(v, fp, 0, MaxArgIndex+1); ok {
				a.SizeArgIndex = uint32(i)
			}
		}},
		// the element count of an int32_arr
		{name: "size", decode: func(v *yaml.Node, fp fieldPath) {
			arrSizeNode = v
			if n, ok := d.integer(v, fp, 1, MaxInt32ArrSize); ok {
				a.Size = uint32(n)
			}
		}},
		{name: "resolve", decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				if msg := checkResolvePath(s); msg != "" {
					d.errorf(v, fp, "invalid resolve path %q: %s", truncate(s), msg)
					return
				}
				a.Resolve = s
			}
		}},
		{name: "btfType"}, {name: "source"},
	})
	if !ok {
		return a, false, indexed
	}
	if a.Type.CapSet() && (k == hookUprobe || k == hookUsdt || k == hookTracepoint || ret) {
		d.errorf(typeNode, p.field("type"), "type %s reads the capability set a kernel_cap_t pointer points to: kprobe and LSM hook arguments only", a.Type)
	}
	if arrSizeNode != nil && a.Type != "" && a.Type != TypeInt32Arr {
		d.errorf(arrSizeNode, p.field("size"), "size applies to int32_arr arguments only (this one is %s)", a.Type)
	}
	if arrSizeNode == nil && a.Type == TypeInt32Arr {
		d.errorf(typeNode, p.field("type"), "an int32_arr needs size, its element count (1 to %d)", MaxInt32ArrSize)
	}
	if a.ReturnCopy && (k == hookTracepoint || k == hookLsm) {
		d.errorf(copyNode, p.field("returnCopy"), "returnCopy reads the argument when the call returns, and %s hooks have no return probe", map[hookKind]string{hookTracepoint: "tracepoint", hookLsm: "LSM"}[k])
	}
	if a.Type == TypeInt32Arr && ret {
		d.errorf(typeNode, p.field("type"), "a return value cannot be an int32_arr")
	}
	if a.Type == TypeIovIter && (ret || k == hookTracepoint) {
		d.errorf(typeNode, p.field("type"), "type iov_iter reads the data a struct iov_iter * describes: kprobe and LSM hook arguments only")
	}
	if a.Type != "" {
		if k == hookUprobe || k == hookUsdt {
			switch a.Type.Class() {
			case ClassInt, ClassNone:
			default:
				if a.Type != TypeString && a.Type != TypeCharBuf && a.Type != TypeInt32Arr {
					d.errorf(typeNode, p.field("type"), "type %s reads a kernel object; uprobe arguments can be integers, string or char_buf", a.Type)
				}
			}
		}
		if a.Type != TypeCharBuf {
			for _, f := range []struct {
				node *yaml.Node
				name string
				set  bool
			}{{sizeNode, "sizeArgIndex", a.SizeArgIndex != 0}, {copyNode, "returnCopy", a.ReturnCopy}, {maxDataNode, "maxData", a.MaxData}} {
				if f.set && f.name == "returnCopy" && a.Type == TypeInt32Arr {
					continue
				}
				if f.set && f.name == "maxData" && takesMaxData(a.Type) {
					continue
				}
				if f.set {
					what := "char_buf arguments only"
					if f.name == "maxData" {
						what = "char_buf and iov_iter arguments only"
					}
					d.errorf(f.node, p.field(f.name), "%s applies to %s (this one is %s)", f.name, what, a.Type)
				}
			}
		}
		if ret && a.Resolve != "" {
			d.errorf(n, p, "a return value cannot use resolve")
		}
		if ret && (a.SizeArgIndex != 0 || a.ReturnCopy) {
			d.errorf(n, p, "a return value cannot use sizeArgIndex or returnCopy")
		}
	}
	return a, len(d.errs.Errors) == before, indexed
}

// checkSymbol checks a kernel symbol name (C identifiers, with the
// compiler's .isra.0 / .cold suffixes).
func checkSymbol(s string) string {
	if s == "" {
		return "must not be empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '.' {
			return fmt.Sprintf("character %q is not allowed in a kernel symbol", c)
		}
	}
	return ""
}

// checkELFSymbol checks a user-space symbol name, which other languages
// spell freely (Go: "net/http.(*Server).Serve").
func checkELFSymbol(s string) string {
	if s == "" {
		return "must not be empty"
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Sprintf("character %q is not allowed in a symbol", r)
		}
	}
	return ""
}

// checkTracepointName checks a tracepoint subsystem, event or LSM hook name.
func checkTracepointName(s string) string {
	if s == "" {
		return "must not be empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '-' {
			return fmt.Sprintf("character %q is not allowed", c)
		}
	}
	return ""
}
