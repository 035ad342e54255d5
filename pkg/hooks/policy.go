package hooks

import (
	"errors"
	"fmt"
	"strconv"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// FromPolicy turns a parsed TracingPolicy into hook declarations. Parts of
// the policy this agent parses but cannot serve on a kernel without kprobes
// are refused here, each with its place in the file, rather than silently
// ignored: a policy that loads does what it says.
//
// With policy-mode monitor, enforcing actions (Sigkill, Signal, Override) are dropped
// and the hooks only report, as in Tetragon.
func FromPolicy(p *tp.TracingPolicy) ([]HookDecl, error) {
	var errs []error
	refuse := func(src tp.Source, format string, args ...any) {
		errs = append(errs, src.Errorf(format, args...))
	}
	for _, t := range p.Spec.Tracepoints {
		refuse(t.Src, "tracepoint hooks are not supported yet (only kprobes:)")
	}
	for _, l := range p.Spec.LsmHooks {
		refuse(l.Src, "lsmhooks need BPF LSM, which this agent does not attach yet")
	}
	for _, u := range p.Spec.UProbes {
		refuse(u.Src, "uprobes are not supported yet")
	}
	if p.Spec.PodSelector != nil {
		refuse(p.Spec.PodSelector.Src, "podSelector needs Kubernetes pod labels, which a Docker host does not have")
	}
	if p.Spec.ContainerSelector != nil {
		refuse(p.Spec.ContainerSelector.Src, "containerSelector is not supported yet")
	}
	monitor := p.Spec.Mode == tp.ModeMonitor

	var decls []HookDecl
	for _, k := range p.Spec.KProbes {
		d := HookDecl{
			Policy:    p.Metadata.Name,
			Call:      k.Call,
			Syscall:   k.Syscall,
			Return:    k.Return,
			Message:   k.Message,
			Tags:      k.Tags,
			Mechanism: string(p.Spec.HookMechanism),
			Src:       k.Src,
		}
		if k.ReturnArg != nil && k.ReturnArgAction != "" {
			refuse(k.ReturnArg.Src, "returnArgAction is not supported")
		}
		for _, a := range k.Args {
			if a.MaxData || a.ReturnCopy || a.SizeArgIndex != 0 {
				refuse(a.Src, "char_buf options (maxData, returnCopy, sizeArgIndex) are not supported")
			}
			d.Args = append(d.Args, ArgDecl{Index: int(a.Index), Type: string(a.Type), Label: a.Label})
		}
		for _, s := range k.Selectors {
			// a slice, not a map: the errors come out in the same order
			// every time
			for _, f := range []struct {
				what string
				n    int
			}{
				{"matchPIDs", len(s.MatchPIDs)}, {"matchBinaries", len(s.MatchBinaries)},
				{"matchNamespaces", len(s.MatchNamespaces)}, {"matchCapabilities", len(s.MatchCapabilities)},
				{"matchReturnArgs", len(s.MatchReturnArgs)},
			} {
				if f.n > 0 {
					refuse(s.Src, "%s is not supported yet (supported: matchArgs, matchActions)", f.what)
				}
			}
			sd := SelectorDecl{Src: s.Src}
			for _, m := range s.MatchArgs {
				md := MatchDecl{Index: int(m.Index), Operator: string(m.Operator), Values: m.Values}
				if m.IntValues != nil {
					// canonical decimal: the parser accepts 0x/0o/0b forms
					md.Values = make([]string, len(m.IntValues))
					for i, v := range m.IntValues {
						md.Values[i] = strconv.FormatInt(v, 10)
					}
				}
				sd.MatchArgs = append(sd.MatchArgs, md)
			}
			for _, a := range s.MatchActions {
				if monitor && a.Action.Enforces() {
					continue
				}
				sd.Actions = append(sd.Actions, ActionDecl{
					Action: string(a.Action), ArgSig: a.ArgSig, ArgError: a.ArgError,
					RateLimit: a.RateLimit, RateLimitScope: string(a.RateLimitScope),
				})
			}
			d.Selectors = append(d.Selectors, sd)
		}
		decls = append(decls, d)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy %q: %w", p.Metadata.Name, errors.Join(errs...))
	}
	return decls, nil
}
