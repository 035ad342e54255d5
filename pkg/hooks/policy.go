package hooks

import (
	"errors"
	"fmt"
	"strconv"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// FromPolicy turns a parsed TracingPolicy into hook declarations. Parts of
// the policy this agent parses but cannot serve are refused here, each with
// its place in the file, rather than silently ignored: a policy that loads
// does what it says.
//
// With policy-mode monitor, enforcing actions (Sigkill, Signal, Override) are dropped
// and the hooks only report, as in Tetragon.
func FromPolicy(p *tp.TracingPolicy) ([]HookDecl, error) {
	return fromPolicy(p, false)
}

// fromPolicy is FromPolicy; with scopes (the agent knows the pods of its
// node), a policy's namespace, podSelector and containerSelector become
// every hook's Scope instead of being refused.
func fromPolicy(p *tp.TracingPolicy, scopes bool) ([]HookDecl, error) {
	c := converter{policy: p.Metadata.Name, monitor: p.Spec.Mode == tp.ModeMonitor, mechanism: string(p.Spec.HookMechanism), spec: &p.Spec}
	var scope *Scope
	switch {
	case scopes:
		if p.Namespaced() || p.Spec.PodSelector != nil || p.Spec.ContainerSelector != nil {
			scope = &Scope{Pods: p.Spec.PodSelector, Containers: p.Spec.ContainerSelector}
			if p.Namespaced() {
				scope.Namespace = p.Metadata.Namespace
			}
		}
	default:
		if p.Namespaced() {
			c.refuse(p.Src, "a TracingPolicyNamespaced applies to the pods of its namespace, which only an agent in Kubernetes knows; use a TracingPolicy")
		}
		if p.Spec.PodSelector != nil {
			c.refuse(p.Spec.PodSelector.Src, "podSelector needs Kubernetes pod labels, which a Docker host does not have")
		}
		if p.Spec.ContainerSelector != nil {
			c.refuse(p.Spec.ContainerSelector.Src, "containerSelector needs Kubernetes container names, which this agent has only in Kubernetes")
		}
	}

	var decls []HookDecl
	kprobes := func(k tp.KProbeSpec, fentry bool) {
		d := c.hook(KindKprobe, k.Call, k.Args, k.Selectors, k.Message, k.Tags, k.Src)
		d.Syscall, d.Return, d.Fentry = k.Syscall, k.Return, fentry
		if k.List != "" {
			// the parser checked that the list exists
			l, _ := p.Spec.List(k.List)
			d.List = ListDecl{Name: l.Name, Type: string(l.Type), Funcs: l.Values, Pattern: l.Pattern}
		}
		if k.ReturnArg != nil {
			d.ReturnType = string(k.ReturnArg.Type)
		}
		// returnArgAction Post is the default: the return value is posted
		// with the event; TrackSock and UntrackSock act on it too
		d.ReturnArgAction = k.ReturnArgAction
		decls = append(decls, d)
	}
	for _, k := range p.Spec.KProbes {
		kprobes(k, false)
	}
	for _, k := range p.Spec.Fentries {
		kprobes(k, true)
	}
	for _, t := range p.Spec.Tracepoints {
		d := c.hook(KindTracepoint, t.Event, t.Args, t.Selectors, t.Message, t.Tags, t.Src)
		d.Subsystem, d.Raw = t.Subsystem, t.Raw
		decls = append(decls, d)
	}
	for _, l := range p.Spec.LsmHooks {
		decls = append(decls, c.hook(KindLSM, l.Hook, l.Args, l.Selectors, l.Message, l.Tags, l.Src))
	}
	for _, u := range p.Spec.UProbes {
		if u.ReturnArg != nil {
			c.refuse(u.ReturnArg.Src, "returnArg is not supported on uprobes")
		}
		if u.ResolvePathInContainer {
			// Tetragon attaches the uprobe in each container its
			// podSelector selects (it requires one)
			c.refuse(u.ResolvePathSrc, "resolvePathInContainer attaches the uprobe in each container a podSelector selects, which needs Kubernetes pods; not built for Docker containers")
		}
		// one hook per symbol (or offset), as in Tetragon
		for _, sym := range u.Symbols {
			d := c.hook(KindUprobe, sym, u.Args, u.Selectors, u.Message, u.Tags, u.Src)
			d.Path, d.Return = u.Path, u.Return
			decls = append(decls, d)
		}
		for _, off := range u.Offsets {
			d := c.hook(KindUprobe, fmt.Sprintf("%#x", off), u.Args, u.Selectors, u.Message, u.Tags, u.Src)
			d.Path, d.Offset, d.Return = u.Path, off, u.Return
			decls = append(decls, d)
		}
	}
	decls = append(decls, c.usdtHooks(p.Spec.Usdts)...)
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("policy %q: %w", p.Metadata.Name, errors.Join(c.errs...))
	}
	for i := range decls {
		decls[i].Scope = scope
	}
	return decls, nil
}

// converter collects the refusals of one policy, so that all of a file's
// errors are reported at once.
type converter struct {
	policy    string
	monitor   bool
	mechanism string
	// spec gives the lists InMap values name
	spec *tp.Spec
	errs []error
}

func (c *converter) refuse(src tp.Source, format string, args ...any) {
	c.errs = append(c.errs, src.Errorf(format, args...))
}

// hook converts what every kind of hook declares alike.
func (c *converter) hook(kind HookKind, call string, args []tp.ArgSpec, sels []tp.Selector, msg string, tags []string, src tp.Source) HookDecl {
	d := HookDecl{
		Kind:      kind,
		Policy:    c.policy,
		Call:      call,
		Message:   msg,
		Tags:      tags,
		Mechanism: c.mechanism,
		Src:       src,
	}
	sized := map[int]bool{} // char_buf arguments cut to a size argument
	for _, a := range args {
		if a.MaxData {
			c.refuse(a.Src, "maxData (reading a char_buf beyond the agent's string limit) is not built yet")
		}
		if a.ReturnCopy {
			c.refuse(a.Src, "returnCopy (reading a char_buf when the call returns, after the kernel filled it) is not built yet")
		}
		ad := ArgDecl{Index: int(a.Index), Type: string(a.Type), Label: a.Label, SizeArgIndex: int(a.SizeArgIndex), Resolve: a.Resolve}
		if a.SizeArgIndex != 0 {
			if !declaresInt(args, ad.SizeArgIndex-1) {
				c.refuse(a.Src, "sizeArgIndex %d names argument %d, the buffer's length, which args must declare with an integer type (this agent cuts the buffer to it in user space)", a.SizeArgIndex, ad.SizeArgIndex-1)
			}
			sized[ad.Index] = true
		}
		d.Args = append(d.Args, ad)
	}
	for _, s := range sels {
		for _, m := range s.MatchArgs {
			if sized[int(m.Index)] {
				// the kernel compares the buffer up to its first NUL byte,
				// Tetragon up to its length: they can differ
				c.refuse(m.Src, "matchArgs on a char_buf with sizeArgIndex is not built yet: the kernel would compare the buffer up to its first NUL byte, not its length")
			}
		}
		d.Selectors = append(d.Selectors, c.selector(s))
	}
	return d
}

// declaresInt reports whether args declares argument index with an
// integer type.
func declaresInt(args []tp.ArgSpec, index int) bool {
	for _, a := range args {
		if int(a.Index) == index {
			return a.Type.Class() == tp.ClassInt
		}
	}
	return false
}

// selector converts one selector. Every filter the parser accepts
// (matchArgs, matchReturnArgs, matchPIDs, matchBinaries, matchNamespaces,
// matchCapabilities) is evaluated in the kernel; the process filters are
// carried as parsed.
func (c *converter) selector(s tp.Selector) SelectorDecl {
	sd := SelectorDecl{
		Src:       s.Src,
		MatchPIDs: s.MatchPIDs, MatchBinaries: s.MatchBinaries,
		MatchNamespaces: s.MatchNamespaces, MatchCapabilities: s.MatchCapabilities,
	}
	for _, m := range s.MatchArgs {
		sd.MatchArgs = append(sd.MatchArgs, c.matchDecl(m))
	}
	for _, m := range s.MatchReturnArgs {
		md := c.matchDecl(m)
		md.Type = string(m.ArgType)
		sd.MatchReturnArgs = append(sd.MatchReturnArgs, md)
	}
	for _, a := range s.MatchActions {
		if c.monitor && a.Action.Enforces() {
			continue
		}
		sd.Actions = append(sd.Actions, ActionDecl{
			Action: string(a.Action), ArgSig: a.ArgSig, ArgError: a.ArgError, ArgSock: int(a.ArgSock),
			KernelStack: a.KernelStackTrace, UserStack: a.UserStackTrace,
			RateLimit: a.RateLimit, RateLimitScope: string(a.RateLimitScope),
			ArgIndex: int(a.ArgIndex), ArgValue: a.ArgValue, Regs: a.ArgRegs,
		})
	}
	return sd
}

func (c *converter) matchDecl(m tp.ArgSelector) MatchDecl {
	if m.Operator == tp.OpInMap || m.Operator == tp.OpNotInMap {
		return c.inMapDecl(m)
	}
	if m.Operator == tp.OpCapabilityMask {
		// the parser turned the names into their bits: Mask's test
		m.Operator = tp.OpMask
	}
	md := MatchDecl{Index: int(m.Index), Operator: string(m.Operator), Values: m.Values}
	if m.IntValues != nil {
		// canonical decimal: the parser accepts 0x/0o/0b forms
		md.Values = make([]string, len(m.IntValues))
		for i, v := range m.IntValues {
			md.Values[i] = strconv.FormatInt(v, 10)
		}
	}
	return md
}
