package compiler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// NotifyEnforcer (NotifyKiller) is served at the notifying hook: Tetragon
// records the notification and its enforcer program, attached to each of
// spec.enforcers' calls, fails the call (argError) and/or signals the
// thread (argSig) when the thread makes one of them. Acting at the hook
// does the same only when the hook is that call: a kprobe on one of the
// enforcer's functions, or a system-call tracepoint that matches only the
// enforcer's system calls. Elsewhere the action would have to wait for the
// thread's next enforced call, which is not built: such hooks are refused.
//
// At the hook, argSig is Signal and argError is Override, with the
// mechanisms and refusals those have.

// checkNotifyKprobe refuses NotifyEnforcer on a kprobe that is not one of
// the enforcer's calls.
func (c *converter) checkNotifyKprobe(k tp.KProbeSpec) {
	calls := []string{k.Call}
	if k.List != "" {
		l, _ := c.spec.List(k.List)
		calls = l.Values
	}
	enforced := c.enforced()
	for _, s := range k.Selectors {
		for _, a := range s.MatchActions {
			if a.Action != tp.ActionNotifyEnforcer {
				continue
			}
			for _, call := range calls {
				if !enforced[callName(call)] {
					c.refuse(a.Src, "action NotifyEnforcer acts when the thread makes one of the enforcer's calls (%s); this agent acts at the notifying hook itself, so the hook must be one of them, and %s is not", strings.Join(c.spec.EnforcerCalls(), ", "), call)
				}
			}
		}
	}
}

// checkNotifyTracepoint refuses NotifyEnforcer on a tracepoint that is not
// the entry of the enforcer's system calls: syscalls/sys_enter_NAME of one
// of them, or raw_syscalls/sys_enter with a selector that matches the
// system call number (field 4, id) against enforced system calls only.
func (c *converter) checkNotifyTracepoint(t tp.TracepointSpec) {
	enforced := c.enforced()
	for _, s := range t.Selectors {
		for _, a := range s.MatchActions {
			if a.Action != tp.ActionNotifyEnforcer {
				continue
			}
			switch {
			case t.Subsystem == "syscalls" && strings.HasPrefix(t.Event, "sys_enter_") && !t.Raw:
				if name := strings.TrimPrefix(t.Event, "sys_enter_"); !enforced[name] {
					c.refuse(a.Src, "action NotifyEnforcer on %s/%s: system call %s is not one of the enforcer's calls (%s)", t.Subsystem, t.Event, name, strings.Join(c.spec.EnforcerCalls(), ", "))
				}
			case t.Subsystem == "raw_syscalls" && t.Event == "sys_enter" && !t.Raw:
				if why := c.matchesEnforcedOnly(t, s, enforced); why != "" {
					c.refuse(a.Src, "action NotifyEnforcer on raw_syscalls/sys_enter: %s; this agent acts at the notifying hook itself, so the selector must match the enforcer's system calls only (matchArgs on the id field, index 4: InMap list:NAME or Equal)", why)
				}
			default:
				c.refuse(a.Src, "action NotifyEnforcer on tracepoint %s/%s: this agent acts at the notifying hook itself, which must be the entry of the enforcer's system calls (syscalls/sys_enter_NAME, or raw_syscalls/sys_enter matching their numbers)", t.Subsystem, t.Event)
			}
		}
	}
}

// matchesEnforcedOnly explains why selector s of raw_syscalls/sys_enter
// can match a system call that is not enforced; "" when it cannot.
func (c *converter) matchesEnforcedOnly(t tp.TracepointSpec, s tp.Selector, enforced map[string]bool) string {
	numbers := syscallNumbers()
	ok := map[int64]bool{}
	for name := range enforced {
		if nr, found := numbers[name]; found {
			ok[int64(nr)] = true
		}
	}
	for _, m := range s.MatchArgs {
		if !slices.ContainsFunc(t.Args, func(a tp.ArgSpec) bool { return a.Index == m.Index && a.Index == 4 }) {
			continue
		}
		var nrs []int64
		switch m.Operator {
		case tp.OpInMap:
			// the values as the parser read them: list names, and
			// numbers as ranges (n is n:n)
			for _, name := range m.Lists {
				l, _ := c.spec.List(name)
				for _, f := range l.Values {
					nr, found := numbers[callName(f)]
					if !found {
						return "list " + name + ": " + f + " is not a system call of this architecture"
					}
					nrs = append(nrs, int64(nr))
				}
			}
			for _, r := range m.Ranges {
				if r.Hi-r.Lo > 512 {
					return fmt.Sprintf("InMap range %d:%d is not a short range of system call numbers", r.Lo, r.Hi)
				}
				for n := r.Lo; n <= r.Hi; n++ {
					nrs = append(nrs, n)
				}
			}
		case tp.OpEqual:
			nrs = m.IntValues
		default:
			continue
		}
		for _, n := range nrs {
			if !ok[n] {
				return "it matches system call " + strconv.FormatInt(n, 10) + ", which is not one of the enforcer's calls (" + strings.Join(c.spec.EnforcerCalls(), ", ") + ")"
			}
		}
		return ""
	}
	return "no matchArgs entry restricts the system call number (field 4, id)"
}

// enforced is the set of the enforcer's calls, by callName.
func (c *converter) enforced() map[string]bool {
	set := map[string]bool{}
	for _, call := range c.spec.EnforcerCalls() {
		set[callName(call)] = true
	}
	return set
}

// callName names an enforced call: a system call by its name (openat for
// sys_openat, __x64_sys_openat...), a kernel function by its own.
func callName(call string) string {
	if name := tp.SyscallName(call); name != "" {
		return name
	}
	return call
}
