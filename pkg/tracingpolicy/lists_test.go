package tracingpolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLists(t *testing.T) {
	// kprobes before lists: a list may be defined after its use
	p := parseOne(t, header+`  kprobes:
  - call: "list:dups"
    args: [{index: 0, type: fd}]
    selectors:
    - matchBinaries: [{operator: In, values: [/usr/bin/cat]}]
      matchActions: [{action: Sigkill, argError: -1}]
  - call: "list:all"
  - call: "list:ksys"
    args: [{index: 0, type: file}]
  lists:
  - name: dups
    type: Syscalls
    values: [sys_dup, __x64_sys_dup2, sys_dup3]
  - name: all
    type: generated_syscalls
  - name: ksys
    type: generated_ftrace
    pattern: "^ksys_"
  - name: plain
    values: [fd_install, security_file_open]
`)
	s := p.Spec
	if len(s.Lists) != 4 {
		t.Fatalf("lists: %+v", s.Lists)
	}
	if l := s.Lists[0]; l.Name != "dups" || l.Type != ListSyscalls || !slices.Equal(l.Values, []string{"sys_dup", "__x64_sys_dup2", "sys_dup3"}) || l.Src.Line != 16 {
		t.Errorf("dups: %+v", l)
	}
	if l := s.Lists[2]; l.Type != ListGeneratedFtrace || l.Pattern != "^ksys_" || len(l.Values) != 0 {
		t.Errorf("ksys: %+v", l)
	}
	if l := s.Lists[3]; l.Type != ListPlain || len(l.Values) != 2 {
		t.Errorf("plain: %+v", l)
	}
	k := s.KProbes
	if k[0].List != "dups" || k[0].Call != "list:dups" || !k[0].Syscall {
		t.Errorf("kprobe 0: %+v", k[0])
	}
	// argError next to Sigkill is accepted, and has no effect there
	if a := k[0].Selectors[0].MatchActions[0]; a.Action != ActionSigkill || a.ArgError != 0 {
		t.Errorf("action: %+v", a)
	}
	if k[1].List != "all" || !k[1].Syscall {
		t.Errorf("kprobe 1: %+v", k[1])
	}
	// a list of kernel functions makes the hook a kernel function hook,
	// where a kernel object type is fine
	if k[2].List != "ksys" || k[2].Syscall {
		t.Errorf("kprobe 2: %+v", k[2])
	}
}

// Tetragon's examples of lists, as its documentation writes them.
func TestTetragonListExamples(t *testing.T) {
	p := parseOne(t, header+`  lists:
  - name: "all-syscalls"
    type: "generated_syscalls"
  kprobes:
  - call: "list:all-syscalls"
    selectors:
    - matchBinaries:
      - operator: "In"
        values:
        - "/usr/bin/kill"
`)
	if p.Spec.KProbes[0].List != "all-syscalls" {
		t.Errorf("%+v", p.Spec.KProbes[0])
	}
	p = parseOne(t, header+`  lists:
  - name: "dups"
    type: "syscalls"
    values:
    - "sys_dup"
    - "sys_dup2"
    - "sys_dup3"
  kprobes:
  - call: "list:dups"
    args:
    - index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - 9999
`)
	if k := p.Spec.KProbes[0]; !k.Syscall || k.Selectors[0].MatchArgs[0].IntValues[0] != 9999 {
		t.Errorf("%+v", k)
	}
}

func TestListErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"undefined list", header + `  kprobes:
  - call: "list:nope"
`, []string{`x.yaml:7:11: spec.kprobes[0].call: list "nope" is not defined in spec.lists`}},
		{"empty list name in call", header + `  kprobes:
  - call: "list:"
`, []string{`x.yaml:7:11: spec.kprobes[0].call: "list:" names no list (write list:NAME with a spec.lists name)`}},
		{"unknown type", header + `  lists:
  - name: a
    type: functions
    values: [fd_install]
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:8:11: spec.lists[0].type: unknown list type "functions" (supported: syscalls, generated_syscalls, generated_ftrace, or none for kernel functions)`}},
		{"duplicate name", header + `  lists:
  - {name: a, type: syscalls, values: [sys_dup]}
  - {name: a, type: syscalls, values: [sys_dup2]}
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:8:12: spec.lists[1].name: list "a" is defined twice (first at line 7)`}},
		{"generated with values", header + `  lists:
  - name: a
    type: generated_syscalls
    values: [sys_dup]
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:9:13: spec.lists[0].values: a generated_syscalls list is generated from the running kernel and takes no values`}},
		{"ftrace without pattern", header + `  lists:
  - name: a
    type: generated_ftrace
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:7:11: spec.lists[0]: a generated_ftrace list needs pattern (a regular expression over available_filter_functions)`}},
		{"bad pattern", header + `  lists:
  - name: a
    type: generated_ftrace
    pattern: "ksys_("
  kprobes: [{call: "list:a"}]
`, []string{"x.yaml:9:14: spec.lists[0].pattern: invalid regular expression: error parsing regexp: missing closing ): `ksys_(`"}},
		{"pattern on another type", header + `  lists:
  - {name: a, type: syscalls, values: [sys_dup], pattern: x}
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:7:59: spec.lists[0].pattern: pattern applies to generated_ftrace lists only`}},
		{"no values", header + `  lists:
  - name: a
    type: syscalls
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:7:11: spec.lists[0]: list "a" needs values (or a generated type)`}},
		{"not a syscall", header + `  lists:
  - name: a
    type: syscalls
    values: [sys_dup, fd_install]
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:9:23: spec.lists[0].values[1]: "fd_install" is not a system call (write sys_NAME)`}},
		{"32-bit syscall", header + `  lists:
  - name: a
    type: syscalls
    values: [__ia32_sys_dup]
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:9:14: spec.lists[0].values[0]: "__ia32_sys_dup" is a 32-bit system call entry point, which this agent does not hook`}},
		{"syscall in a function list", header + `  lists:
  - name: a
    values: [fd_install, sys_dup]
  kprobes: [{call: "list:a"}]
`, []string{`x.yaml:8:26: spec.lists[0].values[1]: "sys_dup" is a system call: system calls go in a list of type syscalls, and cannot be mixed with kernel functions`}},
		{"syscall field contradicts the list", header + `  lists:
  - {name: a, values: [fd_install]}
  kprobes:
  - call: "list:a"
    syscall: true
`, []string{`x.yaml:10:14: spec.kprobes[0].syscall: list "a" holds kernel functions (type ""), which syscall: true contradicts`}},
		{"kernel object on a syscall list", header + `  lists:
  - {name: a, type: syscalls, values: [sys_dup]}
  kprobes:
  - call: "list:a"
    args: [{index: 0, type: file}]
`, []string{`x.yaml:10:29: spec.kprobes[0].args[0].type: type file reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)`}},
		{"override on a function list", header + `  lists:
  - {name: a, values: [security_file_open, fd_install]}
  kprobes:
  - call: "list:a"
    selectors:
    - matchActions: [{action: Override, argError: -1}]
`, []string{`x.yaml:11:22: spec.kprobes[0].selectors[0].matchActions[0]: Override works only on system calls and security_* functions, and list "a" holds "fd_install"`}},
		{"override on a generated function list", header + `  lists:
  - {name: a, type: generated_ftrace, pattern: "^security_"}
  kprobes:
  - call: "list:a"
    selectors:
    - matchActions: [{action: Override, argError: -1}]
`, []string{`x.yaml:11:22: spec.kprobes[0].selectors[0].matchActions[0]: Override works only on system calls and security_* functions, which a generated_ftrace list cannot promise`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(c.yaml))
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v (%T) is not an *ErrorList", err, err)
			}
			var got []string
			for _, e := range list.Errors {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

type noFuncs struct{}

func (noFuncs) Func(name string) (FuncProto, error) { return FuncProto{}, ErrFuncNotFound }
