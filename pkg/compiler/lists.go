package compiler

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// ListDecl is the spec.lists entry a kprobe's "list:NAME" call names.
type ListDecl struct {
	Name string
	// Type is a tracingpolicy.ListType.
	Type string
	// Funcs are the list's values as written; for generated lists they are
	// filled from the running kernel when the policy is loaded.
	Funcs   []string
	Pattern string
}

// maxListFuncs bounds the hooks one list may expand into: a
// generated_ftrace pattern that matches most of the kernel would otherwise
// attach tens of thousands of kprobes.
const maxListFuncs = 1024

// ExpandLists replaces each list hook by the hooks that serve it, as
// Tetragon does: one kprobe per function, with the hook's args and
// selectors. A list of system calls served by the syscall-tracepoint
// mapping stays one hook, whose table holds every listed system call (one
// raw syscall program instead of one per system call).
func ExpandLists(hooks []Decl, facts Facts) ([]Decl, error) {
	var out []Decl
	for _, d := range hooks {
		if d.List.Name == "" {
			out = append(out, d)
			continue
		}
		where := d.Call
		if d.Src != (tp.Source{}) {
			where = d.Src.String() + ": " + d.Call
		}
		mech, _, err := chooseMechanism(d, facts.Features)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		typ := tp.ListType(d.List.Type)
		funcs, err := listFuncs(d.List, mech, facts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(funcs) == 0 {
			return nil, fmt.Errorf("%s: list %q holds no function on this kernel", where, d.List.Name)
		}
		if len(funcs) > maxListFuncs {
			return nil, fmt.Errorf("%s: list %q holds %d functions on this kernel, at most %d are hooked by one list", where, d.List.Name, len(funcs), maxListFuncs)
		}
		if typ.Syscalls() && mech == MechSyscallTracepoint {
			d.List.Funcs = funcs
			out = append(out, d)
			continue
		}
		for _, f := range funcs {
			nd := d
			nd.List = ListDecl{}
			nd.Call, nd.Syscall = f, typ.Syscalls()
			if typ.Syscalls() {
				// the entry point, which Tetragon's events name
				nd.Call = tp.SyscallSymbol(f)
			}
			out = append(out, nd)
		}
	}
	return out, nil
}

// listFuncs returns a list's functions: for system call lists their names
// (dup, not sys_dup), for the others the kernel function names.
func listFuncs(l ListDecl, mech string, facts Facts) ([]string, error) {
	switch tp.ListType(l.Type) {
	case tp.ListSyscalls:
		names := make([]string, 0, len(l.Funcs))
		for _, f := range l.Funcs {
			names = append(names, tp.SyscallName(f))
		}
		return names, nil
	case tp.ListGeneratedSyscalls:
		return kernelSyscalls(facts)
	case tp.ListGeneratedFtrace:
		if mech != MechKprobe && mech != MechFentry {
			return nil, fmt.Errorf("list %q (generated_ftrace) names kernel functions, which only kprobes and fentries can hook, and this kernel has no kprobes (probe feature %s)", l.Name, kernelfeatures.Kprobe)
		}
		re, err := regexp.Compile(l.Pattern)
		if err != nil {
			return nil, fmt.Errorf("list %q: pattern: %w", l.Name, err)
		}
		return ftraceFuncs(tracefsDirs, re)
	}
	return l.Funcs, nil
}

// kernelSyscalls lists the system calls of the running kernel, as Tetragon
// does, from its BTF: every arch entry point (__x64_sys_*) whose system
// call this agent knows the number of (entry points such as
// __x64_sys_ni_syscall have none).
func kernelSyscalls(facts Facts) ([]string, error) {
	spec, err := facts.kernel()
	if err != nil {
		return nil, fmt.Errorf("generated_syscalls lists are read from the kernel's BTF: %w", err)
	}
	prefix := tp.SyscallSymbol("")
	numbers := syscallNumbers()
	seen := map[string]bool{}
	for t, err := range spec.All() {
		if err != nil {
			return nil, fmt.Errorf("reading the kernel's BTF for generated_syscalls: %w", err)
		}
		fn, ok := t.(*btf.Func)
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(fn.Name, prefix)
		if _, known := numbers[name]; ok && known {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// ftraceFuncs returns the functions of tracefs available_filter_functions
// that re matches, sorted and without duplicates (static functions of the
// same name appear once per definition; a kprobe on the name takes the
// first).
func ftraceFuncs(dirs []string, re *regexp.Regexp) ([]string, error) {
	var f *os.File
	var err error
	for _, dir := range dirs {
		if f, err = os.Open(filepath.Join(dir, "available_filter_functions")); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("generated_ftrace lists are read from tracefs available_filter_functions: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "name", or "name [module]"
		name, _, _ := strings.Cut(sc.Text(), " ")
		if name != "" && re.MatchString(name) {
			seen[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// listTable is the syscall table of a hook serving a list of system calls
// through the mapping: one entry per system call, whose arguments are read
// from its registers; funcs names each one's entry point for events.
func listTable(d Decl, flags uint8) (map[uint32]sensor.Syscall, map[uint32]string, error) {
	numbers := syscallNumbers()
	table := map[uint32]sensor.Syscall{}
	funcs := map[uint32]string{}
	for _, name := range d.List.Funcs {
		nr, ok := numbers[name]
		if !ok {
			return nil, nil, fmt.Errorf("list %q: %q is not a system call of this architecture", d.List.Name, name)
		}
		table[nr] = sensor.Syscall{Flags: flags, Variants: []sensor.Variant{{FD: sensor.VarFDRet}}}
		funcs[nr] = tp.SyscallSymbol(name)
	}
	return table, funcs, nil
}
