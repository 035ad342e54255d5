package compiler

import (
	"errors"
	"fmt"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// FromPolicy turns a parsed TracingPolicy into hook declarations. Parts of
// the policy this agent parses but cannot serve are refused here, each with
// its place in the file, rather than silently ignored: a policy that loads
// does what it says.
//
// With policy-mode monitor, enforcing actions (Sigkill, Signal, Override) are dropped
// and the hooks only report, as in Tetragon.
//
// With scopes (the agent knows the pods of its node), a policy's
// namespace, podSelector and containerSelector become every hook's Scope;
// without, they are refused.
func FromPolicy(p *tp.TracingPolicy, scopes bool) ([]Decl, error) {
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

	var decls []Decl
	kprobes := func(k tp.KProbeSpec, fentry bool) {
		d := c.hook(hookevent.KindKprobe, k.Call, k.Args, k.Selectors, k.Message, k.Tags, k.Src)
		d.Syscall, d.Return, d.Fentry = k.Syscall, k.Return, fentry
		d.Data = k.Data
		if k.List != "" {
			// the parser checked that the list exists
			l, _ := p.Spec.List(k.List)
			d.List = ListDecl{Name: l.Name, Type: string(l.Type), Funcs: l.Values, Pattern: l.Pattern}
		}
		if k.ReturnArg != nil {
			d.ReturnType = k.ReturnArg.Type
		}
		// returnArgAction Post is the default: the return value is posted
		// with the event; TrackSock and UntrackSock act on it too
		d.ReturnArgAction = k.ReturnArgAction
		c.checkNotifyKprobe(k)
		decls = append(decls, d)
	}
	for _, k := range p.Spec.KProbes {
		kprobes(k, false)
	}
	for _, k := range p.Spec.Fentries {
		kprobes(k, true)
	}
	for _, t := range p.Spec.Tracepoints {
		d := c.hook(hookevent.KindTracepoint, t.Event, t.Args, t.Selectors, t.Message, t.Tags, t.Src)
		d.Subsystem, d.Raw = t.Subsystem, t.Raw
		c.checkNotifyTracepoint(t)
		decls = append(decls, d)
	}
	for _, l := range p.Spec.LsmHooks {
		decls = append(decls, c.hook(hookevent.KindLSM, l.Hook, l.Args, l.Selectors, l.Message, l.Tags, l.Src))
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
			d := c.hook(hookevent.KindUprobe, sym, u.Args, u.Selectors, u.Message, u.Tags, u.Src)
			d.Path, d.Return = u.Path, u.Return
			decls = append(decls, d)
		}
		for _, off := range u.Offsets {
			d := c.hook(hookevent.KindUprobe, fmt.Sprintf("%#x", off), u.Args, u.Selectors, u.Message, u.Tags, u.Src)
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
func (c *converter) hook(kind hookevent.Kind, call string, args []tp.ArgSpec, sels []tp.Selector, msg string, tags []string, src tp.Source) Decl {
	d := Decl{
		Kind:      kind,
		Policy:    c.policy,
		Call:      call,
		Message:   msg,
		Tags:      tags,
		Mechanism: c.mechanism,
		Src:       src,
	}
	sized := map[uint32]bool{} // char_buf arguments cut to a size argument
	for _, a := range args {
		if a.SizeArgIndex != 0 {
			if !declaresInt(args, int(a.SizeArgIndex)-1) {
				c.refuse(a.Src, "sizeArgIndex %d names argument %d, the buffer's length, which args must declare with an integer type (this agent cuts the buffer to it in user space)", a.SizeArgIndex, a.SizeArgIndex-1)
			}
			sized[a.Index] = true
		}
	}
	d.Args = args
	for _, s := range sels {
		for _, m := range s.MatchArgs {
			if sized[m.Index] {
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

// selector returns one selector as the compiler takes it: InMap filters
// as ranges, and in monitor mode without its enforcing actions. Every
// filter the parser accepts (matchArgs, matchReturnArgs, matchPIDs,
// matchBinaries, matchNamespaces, matchCapabilities) is evaluated in the
// kernel.
func (c *converter) selector(s tp.Selector) tp.Selector {
	out := s
	out.MatchArgs = make([]tp.ArgSelector, len(s.MatchArgs))
	for i, m := range s.MatchArgs {
		if m.Operator == tp.OpInMap || m.Operator == tp.OpNotInMap {
			m = c.inMap(m)
		}
		out.MatchArgs[i] = m
	}
	if len(s.MatchData) > 0 {
		out.MatchData = make([]tp.ArgSelector, len(s.MatchData))
		for i, m := range s.MatchData {
			if m.Operator == tp.OpInMap || m.Operator == tp.OpNotInMap {
				m = c.inMap(m)
			}
			out.MatchData[i] = m
		}
	}
	out.MatchActions = nil
	for _, a := range s.MatchActions {
		if c.monitor && a.Action.Enforces() {
			continue
		}
		out.MatchActions = append(out.MatchActions, a)
	}
	return out
}
