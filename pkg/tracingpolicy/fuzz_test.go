package tracingpolicy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFiles are the policies the fuzzers start from.
func seedFiles(f *testing.F) [][]byte {
	files, _ := filepath.Glob("../../policies/*.yaml")
	examples, _ := filepath.Glob("../../policies/examples/*.yaml")
	files = append(files, examples...)
	more, _ := filepath.Glob("testdata/*.yaml")
	var out [][]byte
	for _, name := range append(files, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// checkParsed asserts what every parse result must satisfy, whatever the
// input.
func checkParsed(t *testing.T, data []byte, pols []*TracingPolicy, err error) {
	t.Helper()
	lines := bytes.Count(data, []byte("\n")) + 1
	if err != nil {
		if pols != nil {
			t.Fatalf("policies returned with error %v", err)
		}
		if errors.Is(err, ErrNotPolicy) {
			return
		}
		var list *ErrorList
		if !errors.As(err, &list) || len(list.Errors) == 0 {
			t.Fatalf("error %v (%T) is neither ErrNotPolicy nor a non-empty *ErrorList", err, err)
		}
		if len(list.Errors) > maxErrors+lines {
			t.Fatalf("%d errors for %d lines", len(list.Errors), lines)
		}
		for _, e := range list.Errors {
			if e.File != "f.yaml" || e.Line < 0 || e.Line > lines || e.Msg == "" || (e.Column > 0 && e.Line == 0) {
				t.Fatalf("malformed error %+v (%d lines)", e, lines)
			}
		}
		return
	}
	if len(pols) == 0 {
		t.Fatal("no policy and no error")
	}
	for _, p := range pols {
		checkPolicy(t, p)
	}
}

// checkPolicy asserts the guarantees of a successfully parsed policy.
func checkPolicy(t *testing.T, p *TracingPolicy) {
	t.Helper()
	if msg := checkDNSSubdomain(p.Metadata.Name); msg != "" {
		t.Fatalf("accepted name %q: %s", p.Metadata.Name, msg)
	}
	if p.Namespaced() != (p.Metadata.Namespace != "") {
		t.Fatalf("kind %s with namespace %q", p.Kind, p.Metadata.Namespace)
	}
	if p.Spec.Hooks() == 0 {
		t.Fatal("accepted a policy without hooks")
	}
	checkArgs := func(args []ArgSpec) {
		if len(args) > MaxArgs {
			t.Fatalf("%d args", len(args))
		}
		for _, a := range args {
			if _, ok := lookupType(a.Type); !ok {
				t.Fatalf("accepted type %q", a.Type)
			}
			if a.Src.Line < 1 || a.TypeSrc.Line < a.Src.Line {
				t.Fatalf("arg sources %+v %+v", a.Src, a.TypeSrc)
			}
		}
	}
	// regAction is the register-writing action the hook kind takes: Regs
	// on uprobes, Set on usdts, none elsewhere
	checkSelectors := func(sels []Selector, args []ArgSpec, ret *ArgSpec, override bool, regAction ...Action) {
		if len(sels) > MaxSelectors {
			t.Fatalf("%d selectors", len(sels))
		}
		for _, s := range sels {
			for _, m := range append(append([]ArgSelector{}, s.MatchArgs...), s.MatchReturnArgs...) {
				if !m.Operator.appliesTo(m.ArgType.Class()) || len(m.Values) == 0 || len(m.Values) > MaxValues {
					t.Fatalf("accepted %+v", m)
				}
				// range and set values ("lo:hi", "list:NAME") are not single integers
				ranged := slices.Contains([]Operator{OpInRange, OpNotInRange, OpInMap, OpNotInMap}, m.Operator)
				if m.ArgType.Class() == ClassInt && !ranged && len(m.IntValues) != len(m.Values) {
					t.Fatalf("int values %v for %v", m.IntValues, m.Values)
				}
			}
			for _, m := range s.MatchArgs {
				if a, ok := findArg(args, m.Index); !ok || a.Type != m.ArgType {
					t.Fatalf("matchArgs %+v refers to %+v", m, a)
				}
			}
			if len(s.MatchReturnArgs) > 0 && (ret == nil || s.MatchReturnArgs[0].ArgType != ret.Type) {
				t.Fatalf("matchReturnArgs without matching returnArg %+v", ret)
			}
			for _, a := range s.MatchActions {
				switch a.Action {
				case ActionOverride:
					if !override {
						t.Fatalf("Override accepted where impossible")
					}
				case ActionSignal:
					if a.ArgSig < 1 || a.ArgSig > maxSignal {
						t.Fatalf("signal %d", a.ArgSig)
					}
				case ActionPost, ActionNoPost, ActionSigkill:
				case ActionSet, ActionRegs:
					if !slices.Contains(regAction, a.Action) {
						t.Fatalf("%s accepted on the wrong kind of hook", a.Action)
					}
					if _, ok := findArg(args, a.ArgIndex); a.Action == ActionSet && !ok {
						t.Fatalf("Set on undeclared argument %d", a.ArgIndex)
					}
					if a.Action == ActionRegs && len(a.ArgRegs) == 0 {
						t.Fatalf("Regs without registers")
					}
					for _, r := range a.ArgRegs {
						if r.Offset%8 != 0 || r.Offset > 152 {
							t.Fatalf("register %+v", r)
						}
					}
				default:
					t.Fatalf("accepted action %q", a.Action)
				}
			}
		}
	}
	for _, k := range p.Spec.KProbes {
		checkArgs(k.Args)
		override := k.Syscall || strings.HasPrefix(k.Call, "security_")
		if k.List != "" {
			l, ok := p.Spec.List(k.List)
			if !ok || k.Call != ListPrefix+k.List || k.Syscall != l.Type.Syscalls() {
				t.Fatalf("list kprobe %+v with list %+v", k, l)
			}
			override = k.Syscall || !l.Type.Generated() && !slices.ContainsFunc(l.Values, func(v string) bool { return !strings.HasPrefix(v, "security_") })
		} else if k.Syscall && k.SyscallName() == "" {
			t.Fatalf("syscall kprobe %q", k.Call)
		}
		checkSelectors(k.Selectors, k.Args, k.ReturnArg, override)
	}
	for _, l := range p.Spec.Lists {
		if l.Type.Generated() != (len(l.Values) == 0) || (l.Type == ListGeneratedFtrace) != (l.Pattern != "") {
			t.Fatalf("accepted list %+v", l)
		}
	}
	for _, tp := range p.Spec.Tracepoints {
		checkSelectors(tp.Selectors, tp.Args, nil, false)
	}
	for _, l := range p.Spec.LsmHooks {
		checkArgs(l.Args)
		checkSelectors(l.Selectors, l.Args, nil, true)
	}
	for _, u := range p.Spec.UProbes {
		checkArgs(u.Args)
		if (len(u.Symbols) == 0) == (len(u.Offsets) == 0) && len(u.Symbols)+len(u.Offsets) > 0 {
			t.Fatalf("uprobe with symbols %v and offsets %v", u.Symbols, u.Offsets)
		}
		checkSelectors(u.Selectors, u.Args, u.ReturnArg, true, ActionRegs)
	}
	for _, u := range p.Spec.Usdts {
		checkArgs(u.Args)
		if !strings.HasPrefix(u.Path, "/") || u.Provider == "" || u.Name == "" {
			t.Fatalf("usdt %+v", u)
		}
		checkSelectors(u.Selectors, u.Args, nil, false, ActionSet)
	}
}

// FuzzParse feeds arbitrary bytes to the parser.
func FuzzParse(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(header + "  kprobes: [{call: sys_openat, args: [{index: 0, type: int}]}]\n---\n{}\n"))
	f.Add([]byte(header + "  usdts:\n  - {path: /bin/x, provider: p, name: n, args: [{index: 0, type: int32}], selectors: [{matchActions: [{action: Set, argIndex: 0, argValue: 32}]}]}\n"))
	f.Add([]byte(header + "  uprobes:\n  - {path: /bin/x, symbols: [f], selectors: [{matchActions: [{action: Regs, argReg: [\"rax:0x123\", \"%rbp:-1\"]}, {action: Override, argError: -1}]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pols, err := Parse("f.yaml", data)
		checkParsed(t, data, pols, err)
		// Parsing is deterministic, errors included.
		pols2, err2 := Parse("f.yaml", data)
		if fmt.Sprint(err) != fmt.Sprint(err2) || len(pols) != len(pols2) {
			t.Fatalf("second parse differs: %v / %v", err, err2)
		}
	})
}

// FuzzParsePolicy varies the fields of a valid policy: whatever it accepts
// must read back exactly what was written, and whatever it rejects must be
// reported on a line of the document.
func FuzzParsePolicy(f *testing.F) {
	f.Add("fd_install", false, "file", uint8(1), "Equal", "/tmp/tetragon", "Sigkill", uint8(1))
	f.Add("security_file_permission", false, "int", uint8(1), "Mask", "0x4", "Post", uint8(3))
	f.Add("sys_openat", true, "string", uint8(1), "Prefix", "/etc/", "Override", uint8(5))
	f.Add("sys_write", true, "size_t", uint8(2), "GT", "4096", "NoPost", uint8(0))
	f.Add("security_mmap_file", false, "uint32", uint8(2), "NotEqual", "-1", "Signal", uint8(2))
	f.Add("tcp_connect", false, "sock", uint8(0), "DPort", "80", "Post", uint8(1))
	f.Add("fd_install", false, "fil", uint8(7), "Prefx", "\"quoted\"\n\ttab", "Kill", uint8(9))
	f.Fuzz(func(t *testing.T, call string, syscall bool, argType string, index uint8, operator, value, action string, nSel uint8) {
		for _, s := range []string{call, argType, operator, value, action} {
			if !utf8.ValidString(s) {
				return // YAML text is UTF-8: no policy to parse (not a skip: nothing is left unchecked)
			}
		}
		q := strconv.Quote
		var b strings.Builder
		fmt.Fprintf(&b, "%s  kprobes:\n  - call: %s\n    syscall: %v\n    args:\n    - index: %d\n      type: %s\n    selectors:\n",
			header, q(call), syscall, index, q(argType))
		for i := 0; i < int(nSel); i++ {
			fmt.Fprintf(&b, "    - matchArgs:\n      - index: %d\n        operator: %s\n        values: [%s]\n      matchActions:\n      - action: %s\n",
				index, q(operator), q(value), q(action))
		}
		data := []byte(b.String())
		pols, err := Parse("f.yaml", data)
		checkParsed(t, data, pols, err)
		if err != nil {
			if errors.Is(err, ErrNotPolicy) {
				t.Fatalf("a TracingPolicy document reported as not a policy: %v", err)
			}
			return
		}
		k := pols[0].Spec.KProbes[0]
		op, _ := parseOperator(operator)
		if k.Call != call || k.Syscall != syscall || len(k.Args) != 1 || k.Args[0].Index != uint32(index) ||
			k.Args[0].Type != canonicalType(argType) || len(k.Selectors) != int(nSel) {
			t.Fatalf("read back %+v", k)
		}
		for _, s := range k.Selectors {
			m, a := s.MatchArgs[0], s.MatchActions[0]
			if m.Index != uint32(index) || m.Operator != op || len(m.Values) != 1 || m.Values[0] != value || string(a.Action) != action {
				t.Fatalf("selector read back %+v %+v", m, a)
			}
		}
	})
}
