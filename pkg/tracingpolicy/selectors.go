package tracingpolicy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// selectors decodes a hook's selectors list (n may be nil: none).
func (d *decoder) selectors(n *yaml.Node, p fieldPath, h *hookCtx) []Selector {
	if n == nil {
		return nil
	}
	var out []Selector
	d.list(n, p, MaxSelectors, func(_ int, v *yaml.Node, ip fieldPath) {
		out = append(out, d.selector(d.expandMacros(v, ip), ip, h))
	})
	return out
}

func (d *decoder) selector(n *yaml.Node, p fieldPath, h *hookCtx) Selector {
	s := Selector{Src: d.src(n, p)}
	filters := func(decode func(i int, v *yaml.Node, ip fieldPath)) func(v *yaml.Node, fp fieldPath) {
		return func(v *yaml.Node, fp fieldPath) { d.list(v, fp, MaxFilters, decode) }
	}
	d.mapping(n, p, []field{
		{name: "matchPIDs", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchPIDs = append(s.MatchPIDs, d.matchPID(v, ip))
		})},
		{name: "matchArgs", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			if a, ok := d.matchArg(v, ip, h, false); ok {
				s.MatchArgs = append(s.MatchArgs, a)
			}
		})},
		{name: "matchReturnArgs", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			if a, ok := d.matchArg(v, ip, h, true); ok {
				s.MatchReturnArgs = append(s.MatchReturnArgs, a)
			}
		})},
		{name: "matchBinaries", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchBinaries = append(s.MatchBinaries, d.matchBinary(v, ip))
		})},
		{name: "matchParentBinaries", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchParentBinaries = append(s.MatchParentBinaries, d.matchBinary(v, ip))
		})},
		{name: "matchNamespaces", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchNamespaces = append(s.MatchNamespaces, d.matchNamespace(v, ip))
		})},
		{name: "matchCapabilities", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchCapabilities = append(s.MatchCapabilities, d.matchCapability(v, ip))
		})},
		{name: "matchCapabilityChanges", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchCapabilityChanges = append(s.MatchCapabilityChanges, d.matchCapability(v, ip))
		})},
		{name: "matchNamespaceChanges", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			s.MatchNamespaceChanges = append(s.MatchNamespaceChanges, d.matchNamespaceChange(v, ip))
		})},
		{name: "matchData", decode: filters(func(_ int, v *yaml.Node, ip fieldPath) {
			if a, ok := d.matchData(v, ip, h); ok {
				s.MatchData = append(s.MatchData, a)
			}
		})},
		{name: "matchActions", decode: func(v *yaml.Node, fp fieldPath) { s.MatchActions = d.actions(v, fp, h) }},
		// Tetragon filters this agent does not implement.
		{name: "matchReturnActions"},
	})
	return s
}

func (d *decoder) setOperator(v *yaml.Node, fp fieldPath) SetOperator {
	s, ok := d.str(v, fp)
	if !ok {
		return ""
	}
	switch SetOperator(s) {
	case OpIn, OpNotIn:
		return SetOperator(s)
	}
	d.errorf(v, fp, "unknown operator %q (supported: In, NotIn)", truncate(s))
	return ""
}

// values decodes a required, non-empty values list.
func (d *decoder) values(v *yaml.Node, fp fieldPath) ([]string, []*yaml.Node) {
	vals, nodes := d.strings(v, fp, MaxValues)
	if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		d.errorf(v, fp, "values must not be empty")
	}
	return vals, nodes
}

func (d *decoder) matchPID(n *yaml.Node, p fieldPath) PIDSelector {
	s := PIDSelector{Src: d.src(n, p)}
	d.mapping(n, p, []field{
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Operator = d.setOperator(v, fp) }},
		{name: "values", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			d.list(v, fp, MaxValues, func(_ int, item *yaml.Node, ip fieldPath) {
				if pid, ok := d.integer(item, ip, 0, 1<<32-1); ok {
					s.Values = append(s.Values, uint32(pid))
				}
			})
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				d.errorf(v, fp, "values must not be empty")
			}
		}},
		{name: "followForks", decode: func(v *yaml.Node, fp fieldPath) { s.FollowForks, _ = d.boolean(v, fp) }},
		{name: "isNamespacePID", decode: func(v *yaml.Node, fp fieldPath) { s.IsNamespacePID, _ = d.boolean(v, fp) }},
	})
	return s
}

// matchArg decodes a matchArgs (or, with ret, matchReturnArgs) entry and
// checks it against the argument it refers to.
func (d *decoder) matchArg(n *yaml.Node, p fieldPath, h *hookCtx, ret bool) (ArgSelector, bool) {
	a := ArgSelector{Src: d.src(n, p)}
	before := len(d.errs.Errors)
	var indexNode, opNode, valuesNode, argsNode *yaml.Node
	var valueNodes []*yaml.Node
	var specPos []int64
	var posNodes []*yaml.Node
	priv := false // a *PortPriv operator: a port filter with no values
	ok := d.mapping(n, p, []field{
		// index defaults to 0 as in Tetragon's CRD (where it is optional).
		{name: "index", decode: func(v *yaml.Node, fp fieldPath) {
			indexNode = v
			if i, ok := d.integer(v, fp, 0, 1<<31-1); ok {
				a.Index = uint32(i)
			}
		}},
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			opNode = v
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			if op, ok := parseOperator(s); ok {
				a.Operator = op
				return
			}
			if op, ok := privPortOperator(s); ok {
				a.Operator, priv = op, true
				return
			}
			if unsupportedOperator(s) {
				d.errorf(v, fp, "operator %q is not supported by this agent (supported: %s)", s, operatorNames)
				return
			}
			d.errorf(v, fp, "unknown operator %q (supported: %s)", truncate(s), operatorNames)
		}},
		// required except with the *PortPriv operators (checked below)
		{name: "values", decode: func(v *yaml.Node, fp fieldPath) { valuesNode = v }},
		// positions in the hook's args list; one wins over index
		{name: "args", decode: func(v *yaml.Node, fp fieldPath) {
			argsNode = v
			d.list(v, fp, MaxArgs, func(_ int, iv *yaml.Node, ip fieldPath) {
				if pos, ok := d.integer(iv, ip, 0, 1<<31-1); ok {
					specPos, posNodes = append(specPos, pos), append(posNodes, iv)
				}
			})
		}},
	})
	switch {
	case priv:
		// Tetragon's *PortPriv: the port is privileged (below 1024);
		// values, if any, are not read, as in Tetragon
		a.Ranges = []Range{{0, 1023}}
	case valuesNode != nil:
		a.Values, valueNodes = d.values(valuesNode, p.field("values"))
	case ok:
		d.errorf(n, p, "missing required field %q", "values")
	}
	if !ok || len(d.errs.Errors) > before {
		return a, false
	}
	if len(specPos) > 0 {
		if ret {
			d.errorf(argsNode, p.field("args"), "matchReturnArgs filters the return value, not an argument: args does not apply")
			return a, false
		}
		if len(specPos) > 1 {
			d.errorf(argsNode, p.field("args"), "args names one argument by its position in the hook's args list, got %d positions (several are for CelExpr, which this agent does not support)", len(specPos))
			return a, false
		}
		if specPos[0] >= int64(len(h.args)) {
			d.errorf(posNodes[0], p.field("args").index(0), "args position %d is beyond the hook's %d declared arguments", specPos[0], len(h.args))
			return a, false
		}
		a.Index = h.args[specPos[0]].Index
	}

	// Find the argument the filter applies to.
	var t ArgType
	if ret {
		switch {
		case h.kind == hookTracepoint || h.kind == hookLsm:
			d.errorf(n, p, "matchReturnArgs needs a return value, which %s do not have", hookName(h.kind))
			return a, false
		case !h.ret:
			d.errorf(n, p, "matchReturnArgs needs \"return: true\" on the hook")
			return a, false
		case h.retArg == nil:
			d.errorf(n, p, "matchReturnArgs needs returnArg to declare the return value's type")
			return a, false
		}
		if indexNode != nil && a.Index != 0 {
			d.errorf(indexNode, p.field("index"), "the return value has index 0, got %d", a.Index)
			return a, false
		}
		t = h.retArg.Type
	} else {
		arg, found := findArg(h.args, a.Index)
		if !found {
			at := indexNode
			if at == nil {
				at = n
			}
			if h.isData {
				d.errorf(at, p.field("index"), "data index %d is not declared: matchData's index is a data entry's position, and data has %d entries", a.Index, len(h.args))
				return a, false
			}
			d.errorf(at, p.field("index"), "argument index %d is not declared in args (declared: %s)", a.Index, declaredIndexes(h.args))
			return a, false
		}
		t = arg.Type
	}
	a.ArgType = t
	if t == "" {
		return a, false // the type itself was invalid, already reported
	}
	class := t.Class()
	if a.Operator == OpCapabilityMask {
		if !t.CapSet() {
			d.errorf(opNode, p.field("operator"), "operator CapabilityMask applies to kernel_cap_t, cap_inheritable, cap_permitted and cap_effective arguments (this one is %s)", t)
			return a, false
		}
		bits, errs := capabilityMaskValues(a.Values)
		for i, err := range errs {
			if err != nil {
				d.errorf(valueNodes[i], p.field("values").index(i), "%v", err)
			}
		}
		a.IntValues = bits
		return a, len(d.errs.Errors) == before
	}
	if !a.Operator.appliesTo(class) {
		d.errorf(opNode, p.field("operator"), "operator %s does not apply to type %s (%s)", a.Operator, t, operatorsFor(class))
		return a, false
	}
	if t == TypeSockaddr && !a.Operator.onSockaddr() {
		d.errorf(opNode, p.field("operator"), "operator %s does not apply to type sockaddr: a socket address has one address and port, which Tetragon matches with SAddr, NotSAddr, SPort, NotSPort (and Family)", a.Operator)
		return a, false
	}
	if (a.Operator == OpGreaterThan || a.Operator == OpLessThan) && len(a.Values) != 1 {
		d.errorf(valuesNode, p.field("values"), "operator %s takes exactly one value, got %d", a.Operator, len(a.Values))
		return a, false
	}
	if a.Operator == OpInMap || a.Operator == OpNotInMap {
		d.addInMapValues(&a, t, valueNodes, p)
		return a, len(d.errs.Errors) == before
	}
	for i, s := range a.Values {
		if err := a.ParseValue(s); err != nil {
			d.errorf(valueNodes[i], p.field("values").index(i), "%v", err)
		}
	}
	return a, len(d.errs.Errors) == before
}

// ParseValue checks value s of the filter as its operator and the type of
// its argument (ArgType) take it, and adds it to the parsed values
// (IntValues, Ranges or Prefixes; a string operator's values are Values
// themselves). InMap and CapabilityMask, whose values need the policy's
// lists and capability names, are parsed with the policy.
func (a *ArgSelector) ParseValue(s string) error {
	switch {
	case a.ArgType.Class() == ClassSocket:
		return a.addSockValue(s)
	case a.Operator == OpInRange, a.Operator == OpNotInRange, a.Operator == OpSubString,
		a.Operator == OpSubStringIgnCase, a.Operator == OpFileType, a.Operator == OpNotFileType:
		return a.addValue(a.ArgType, s)
	case a.ArgType.Class() == ClassInt:
		v, err := parseInt(strings.TrimSpace(s), a.ArgType)
		if err != nil {
			return err
		}
		a.IntValues = append(a.IntValues, v)
	}
	return nil
}

func hookName(k hookKind) string {
	switch k {
	case hookTracepoint:
		return "tracepoints"
	case hookLsm:
		return "LSM hooks"
	case hookUprobe:
		return "uprobes"
	case hookUsdt:
		return "usdts"
	}
	return "kprobes"
}

func declaredIndexes(args []ArgSpec) string {
	if len(args) == 0 {
		return "none"
	}
	var s []string
	for _, a := range args {
		s = append(s, strconv.Itoa(int(a.Index)))
	}
	return strings.Join(s, ", ")
}

func operatorsFor(c ArgClass) string {
	switch c {
	case ClassInt:
		return "integers take Equal, NotEqual, Mask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap"
	case ClassString:
		return "strings take Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, SubString, SubStringIgnCase"
	case ClassPath:
		return "paths take Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, SubString, SubStringIgnCase, FileType, NotFileType"
	case ClassSocket:
		return "sockets take " + sockOperatorNames + "; sockaddr only SAddr, NotSAddr, SPort, NotSPort, Family"
	case ClassStruct:
		return "no operator is supported on kernel structures such as cred, user_namespace and module, nor on int32_arr"
	}
	return "nop arguments are not read and cannot be matched"
}

func (d *decoder) matchBinary(n *yaml.Node, p fieldPath) BinarySelector {
	s := BinarySelector{Src: d.src(n, p)}
	var valueNodes []*yaml.Node
	d.mapping(n, p, []field{
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			str, ok := d.str(v, fp)
			if !ok {
				return
			}
			switch op := BinaryOperator(str); op {
			case BinIn, BinNotIn, BinPrefix, BinNotPrefix, BinPostfix, BinNotPostfix:
				s.Operator = op
			default:
				d.errorf(v, fp, "unknown operator %q (supported: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix)", truncate(str))
			}
		}},
		{name: "values", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Values, valueNodes = d.values(v, fp) }},
		{name: "followChildren", decode: func(v *yaml.Node, fp fieldPath) { s.FollowChildren, _ = d.boolean(v, fp) }},
	})
	switch s.Operator {
	case BinIn, BinNotIn, BinPrefix, BinNotPrefix:
		for i, v := range s.Values {
			if !strings.HasPrefix(v, "/") {
				d.errorf(valueNodes[i], p.field("values").index(i), "binary %q must be an absolute path (the executable's full path is compared)", truncate(v))
			}
		}
	}
	return s
}

func (d *decoder) matchNamespace(n *yaml.Node, p fieldPath) NamespaceSelector {
	s := NamespaceSelector{Src: d.src(n, p)}
	var valueNodes []*yaml.Node
	d.mapping(n, p, []field{
		{name: "namespace", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			str, ok := d.str(v, fp)
			if !ok {
				return
			}
			switch ns := NamespaceType(str); ns {
			case NsUts, NsIpc, NsMnt, NsPid, NsPidForChildren, NsNet, NsTime, NsTimeForChildren, NsCgroup, NsUser:
				s.Namespace = ns
			default:
				d.errorf(v, fp, "unknown namespace %q (supported: Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User)", truncate(str))
			}
		}},
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Operator = d.setOperator(v, fp) }},
		{name: "values", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Values, valueNodes = d.values(v, fp) }},
	})
	for i, v := range s.Values {
		if v == HostNS {
			s.HostNS = true
			continue
		}
		id, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			d.errorf(valueNodes[i], p.field("values").index(i), "namespace value %q must be a namespace inode number or %q", truncate(v), HostNS)
			continue
		}
		s.IDs = append(s.IDs, uint32(id))
	}
	return s
}

func (d *decoder) matchCapability(n *yaml.Node, p fieldPath) CapabilitiesSelector {
	s := CapabilitiesSelector{Type: CapEffective, Src: d.src(n, p)}
	var valueNodes []*yaml.Node
	d.mapping(n, p, []field{
		{name: "type", decode: func(v *yaml.Node, fp fieldPath) {
			str, ok := d.str(v, fp)
			if !ok {
				return
			}
			switch t := CapabilityType(str); t {
			case CapEffective, CapInheritable, CapPermitted:
				s.Type = t
			default:
				d.errorf(v, fp, "unknown capability type %q (supported: Effective, Inheritable, Permitted)", truncate(str))
			}
		}},
		{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Operator = d.setOperator(v, fp) }},
		{name: "isNamespaceCapability", decode: func(v *yaml.Node, fp fieldPath) { s.IsNamespaceCapability, _ = d.boolean(v, fp) }},
		{name: "values", required: true, decode: func(v *yaml.Node, fp fieldPath) { s.Values, valueNodes = d.values(v, fp) }},
	})
	for i, v := range s.Values {
		num, ok := capabilityNumber(v)
		if !ok {
			d.errorf(valueNodes[i], p.field("values").index(i), "unknown capability %q (expected a name such as CAP_SYS_ADMIN)", truncate(v))
			continue
		}
		s.Values[i] = strings.ToUpper(v)
		s.Mask |= 1 << num
	}
	return s
}

// actions decodes a matchActions list.
func (d *decoder) actions(n *yaml.Node, p fieldPath, h *hookCtx) []ActionSelector {
	var out []ActionSelector
	seen := map[Action]int{}
	d.list(n, p, MaxFilters, func(i int, v *yaml.Node, ip fieldPath) {
		a, ok := d.action(v, ip, h)
		if !ok {
			return
		}
		if prev, dup := seen[a.Action]; dup {
			d.errorf(v, ip, "action %s is already listed at matchActions[%d]", a.Action, prev)
			return
		}
		seen[a.Action] = i
		out = append(out, a)
	})
	_, post := seen[ActionPost]
	if _, noPost := seen[ActionNoPost]; post && noPost {
		d.errorf(n, p, "actions Post and NoPost contradict each other")
	}
	return out
}

func (d *decoder) action(n *yaml.Node, p fieldPath, h *hookCtx) (ActionSelector, bool) {
	a := ActionSelector{Src: d.src(n, p)}
	before := len(d.errs.Errors)
	type seenField struct {
		node *yaml.Node
		name string
	}
	var actionNode, argErrorNode, argSigNode, argSockNode, rateNode, scopeNode, urlNode, fqdnNode *yaml.Node
	var argIndexNode, argValueNode, argRegNode *yaml.Node
	var stackNodes []seenField
	var foreign []seenField // fields of actions this agent does not implement
	other := func(name string) field {
		return field{name: name, decode: func(v *yaml.Node, fp fieldPath) {
			foreign = append(foreign, seenField{v, name})
		}}
	}
	unsupportedFlag := func(name string) field {
		return field{name: name, decode: func(v *yaml.Node, fp fieldPath) {
			if b, ok := d.boolean(v, fp); ok && b {
				d.errorf(v, fp, "%s is not supported by this agent", name)
			}
		}}
	}
	ok := d.mapping(n, p, []field{
		{name: "action", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			actionNode = v
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			s = canonicalAction(s)
			switch act := Action(s); act {
			case ActionPost, ActionNoPost, ActionSigkill, ActionSignal, ActionOverride, ActionTrackSock, ActionUntrackSock,
				ActionGetURL, ActionDNSLookup, ActionNotifyEnforcer, ActionSet, ActionRegs:
				a.Action = act
			case "NotifyKiller": // NotifyEnforcer's earlier name (killer.yaml)
				a.Action = ActionNotifyEnforcer
			default:
				if why := removedAction(s); why != "" {
					d.errorf(v, fp, "%s", why)
				} else if unsupportedAction(s) {
					d.errorf(v, fp, "action %s is not supported by this agent (supported: %s)", s, supportedActions)
				} else {
					d.errorf(v, fp, "unknown action %q (supported: %s)", truncate(s), supportedActions)
				}
			}
		}},
		{name: "argError", decode: func(v *yaml.Node, fp fieldPath) {
			argErrorNode = v
			if e, ok := d.integer(v, fp, -1<<31, 1<<31-1); ok {
				a.ArgError = int32(e)
			}
		}},
		{name: "argSig", decode: func(v *yaml.Node, fp fieldPath) {
			argSigNode = v
			if sig, ok := d.integer(v, fp, 1, maxSignal); ok {
				a.ArgSig = uint32(sig)
			}
		}},
		{name: "rateLimit", decode: func(v *yaml.Node, fp fieldPath) {
			rateNode = v
			if s, ok := d.str(v, fp); ok {
				dur, err := parseRateLimit(s)
				if err != nil {
					d.errorf(v, fp, "%v", err)
				}
				a.RateLimit = dur
			}
		}},
		{name: "rateLimitScope", decode: func(v *yaml.Node, fp fieldPath) {
			scopeNode = v
			if s, ok := d.str(v, fp); ok {
				switch sc := RateLimitScope(s); sc {
				case ScopeThread, ScopeProcess, ScopeGlobal:
					a.RateLimitScope = sc
				default:
					d.errorf(v, fp, "unknown rateLimitScope %q (supported: thread, process, global)", truncate(s))
				}
			}
		}},
		{name: "kernelStackTrace", decode: func(v *yaml.Node, fp fieldPath) {
			stackNodes = append(stackNodes, seenField{v, "kernelStackTrace"})
			a.KernelStackTrace, _ = d.boolean(v, fp)
		}},
		{name: "userStackTrace", decode: func(v *yaml.Node, fp fieldPath) {
			stackNodes = append(stackNodes, seenField{v, "userStackTrace"})
			a.UserStackTrace, _ = d.boolean(v, fp)
		}},
		unsupportedFlag("imaHash"),
		{name: "argSock", decode: func(v *yaml.Node, fp fieldPath) {
			argSockNode = v
			if i, ok := d.integer(v, fp, 0, 1<<31-1); ok {
				a.ArgSock = uint32(i)
			}
		}},
		{name: "argUrl", decode: func(v *yaml.Node, fp fieldPath) {
			urlNode = v
			if u, ok := d.str(v, fp); ok {
				if _, err := ParseActionURL(u); err != nil {
					d.errorf(v, fp, "%v", err)
				}
				a.ArgURL = u
			}
		}},
		{name: "argFqdn", decode: func(v *yaml.Node, fp fieldPath) {
			fqdnNode = v
			if f, ok := d.str(v, fp); ok {
				if err := CheckFQDN(f); err != nil {
					d.errorf(v, fp, "%v", err)
				}
				a.ArgFQDN = f
			}
		}},
		other("argFd"), other("argName"),
		{name: "argIndex", decode: func(v *yaml.Node, fp fieldPath) {
			argIndexNode = v
			if i, ok := d.integer(v, fp, 0, 1<<31-1); ok {
				a.ArgIndex = uint32(i)
			}
		}},
		{name: "argValue", decode: func(v *yaml.Node, fp fieldPath) {
			argValueNode = v
			if x, ok := d.integer(v, fp, -1<<63, 1<<63-1); ok {
				a.ArgValue = x
			}
		}},
		{name: "argReg", decode: func(v *yaml.Node, fp fieldPath) {
			argRegNode = v
			a.ArgRegs = d.regAssigns(v, fp)
		}},
	})
	if !ok || a.Action == "" {
		return a, false
	}
	for _, f := range foreign {
		d.errorf(f.node, p.field(f.name), "%s does not apply to action %s", f.name, a.Action)
	}
	d.checkRegAction(&a, n, actionNode, argIndexNode, argValueNode, argRegNode, p, h)
	switch a.Action {
	case ActionOverride:
		if argErrorNode == nil {
			d.errorf(n, p, "action Override needs argError (the error to return, e.g. -1 for EPERM)")
		}
		if !h.override {
			d.errorf(actionNode, p.field("action"), "%s", h.overrideWhy)
		}
	case ActionSignal:
		if argSigNode == nil {
			d.errorf(n, p, "action Signal needs argSig (the signal number, %s)", signalRange())
		}
	}
	d.remoteActionArgs(a, n, p, urlNode, fqdnNode)
	d.notifyArgs(&a, n, actionNode, argErrorNode, argSigNode, p, h)
	// argError next to another action is accepted and has no effect, as in
	// Tetragon, whose validation does not tie it to Override (its
	// examples set it on Sigkill); only Override returns it.
	if argErrorNode != nil && a.Action != ActionOverride && a.Action != ActionNotifyEnforcer {
		a.ArgError = 0
	}
	if a.Action == ActionTrackSock || a.Action == ActionUntrackSock {
		// argSock defaults to 0, as in Tetragon's CRD
		arg, found := findArg(h.args, a.ArgSock)
		at := argSockNode
		if at == nil {
			at = n
		}
		switch {
		case !found:
			d.errorf(at, p.field("argSock"), "argSock %d is not a declared argument (declared: %s)", a.ArgSock, declaredIndexes(h.args))
		case arg.Type != TypeSock && arg.Type != TypeSocket && arg.Type != TypeSkb:
			d.errorf(at, p.field("argSock"), "argSock %d is declared %s; %s needs a sock, socket or skb argument", a.ArgSock, arg.Type, a.Action)
		}
	} else if argSockNode != nil {
		d.errorf(argSockNode, p.field("argSock"), "argSock applies to actions TrackSock and UntrackSock only")
	}
	if argSigNode != nil && a.Action != ActionSignal && a.Action != ActionNotifyEnforcer {
		d.errorf(argSigNode, p.field("argSig"), "argSig applies to actions Signal and NotifyEnforcer only")
	}
	for _, sn := range stackNodes {
		switch {
		case a.Action != ActionPost:
			d.errorf(sn.node, p.field(sn.name), "%s applies to action Post only", sn.name)
		case h.kind != hookKprobe:
			d.errorf(sn.node, p.field(sn.name), "%s is served on kprobes only (process_kprobe events carry stack traces), not on %s", sn.name, hookName(h.kind))
		}
	}
	if rateNode != nil && a.Action != ActionPost {
		d.errorf(rateNode, p.field("rateLimit"), "rateLimit applies to action Post only")
	}
	if scopeNode != nil {
		if rateNode == nil || a.Action != ActionPost {
			d.errorf(scopeNode, p.field("rateLimitScope"), "rateLimitScope applies to action Post with a rateLimit only")
		}
	} else if a.RateLimit > 0 {
		a.RateLimitScope = ScopeThread
	}
	return a, len(d.errs.Errors) == before
}

// parseRateLimit reads Tetragon's rate limit syntax: a whole number of
// seconds, optionally suffixed s, m or h.
func parseRateLimit(s string) (time.Duration, error) {
	num, unit := s, time.Second
	if s != "" {
		switch s[len(s)-1] {
		case 's':
			num = s[:len(s)-1]
		case 'm':
			num, unit = s[:len(s)-1], time.Minute
		case 'h':
			num, unit = s[:len(s)-1], time.Hour
		}
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid rateLimit %q: want a positive whole number of seconds, optionally with suffix s, m or h (e.g. 30s, 5m, 1h)", truncate(s))
	}
	d := time.Duration(n) * unit
	if d > 7*24*time.Hour {
		return 0, fmt.Errorf("invalid rateLimit %q: at most a week", truncate(s))
	}
	return d, nil
}
