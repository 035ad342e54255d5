package tracingpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestSelectorMacros(t *testing.T) {
	// the hooks come first: macros may follow their use
	p := parseOne(t, header+`  kprobes:
  - call: fd_install
    syscall: false
    args: [{index: 1, type: file}]
    selectors:
    - macros: [secrets, kill]
      matchBinaries: [{operator: In, values: [/usr/bin/cat]}]
    - macros: [secrets]
  lsmhooks:
  - hook: file_open
    args: [{index: 1, type: file}]
    selectors:
    - macros: [kill]
  selectorsMacros:
    secrets:
      matchArgs: [{index: 1, operator: Prefix, values: [/etc/shadow]}]
    kill:
      matchActions: [{action: Sigkill}]
`)
	s0 := p.Spec.KProbes[0].Selectors[0]
	if len(s0.MatchArgs) != 1 || s0.MatchArgs[0].Values[0] != "/etc/shadow" || s0.MatchActions[0].Action != ActionSigkill ||
		s0.MatchBinaries[0].Values[0] != "/usr/bin/cat" {
		t.Errorf("selector 0: %+v", s0)
	}
	// a macro's filter is located in the macro's text
	if src := s0.MatchArgs[0].Src; src.Line != 21 {
		t.Errorf("macro filter located at %v", src)
	}
	if s1 := p.Spec.KProbes[0].Selectors[1]; len(s1.MatchArgs) != 1 || len(s1.MatchActions) != 0 {
		t.Errorf("selector 1: %+v", s1)
	}
	if l := p.Spec.LsmHooks[0].Selectors[0]; len(l.MatchActions) != 1 || l.MatchActions[0].Action != ActionSigkill {
		t.Errorf("lsm selector: %+v", l)
	}
}

func TestSelectorMacroErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"undefined", header + `  selectorsMacros:
    a: {matchActions: [{action: Sigkill}]}
  kprobes:
  - call: sys_openat
    selectors:
    - macros: [a, b]
`, []string{`x.yaml:11:19: spec.kprobes[0].selectors[0].macros[1]: undefined macro "b" (spec.selectorsMacros defines "a")`}},
		{"no macros defined", header + `  kprobes:
  - call: sys_openat
    selectors:
    - macros: [b]
`, []string{`x.yaml:9:16: spec.kprobes[0].selectors[0].macros[0]: macro "b" is used, but spec.selectorsMacros defines no macros`}},
		{"filter from two places", header + `  selectorsMacros:
    a: {matchActions: [{action: Sigkill}]}
  kprobes:
  - call: sys_openat
    selectors:
    - macros: [a]
      matchActions: [{action: Post}]
`, []string{`x.yaml:11:16: spec.kprobes[0].selectors[0].macros[0]: macro "a" sets matchActions, which the selector sets too (a filter list comes from one place)`}},
		{"macro using macros", header + `  selectorsMacros:
    a: {macros: [b], matchActions: [{action: Sigkill}]}
    b: {matchBinaries: [{operator: In, values: [/bin/sh]}]}
  kprobes:
  - call: sys_openat
    selectors:
    - macros: [a]
`, []string{`x.yaml:7:9: spec.selectorsMacros.a.macros: a macro cannot use other macros`}},
		{"macro not a mapping", header + `  selectorsMacros:
    a: [1]
  kprobes:
  - call: sys_openat
`, []string{`x.yaml:7:8: spec.selectorsMacros.a: a macro must be a selector (a mapping), got a list`}},
		{"bad filter in a macro", header + `  selectorsMacros:
    a: {matchArgs: [{index: 3, operator: Equal, values: [1]}]}
  kprobes:
  - call: sys_openat
    selectors:
    - macros: [a]
`, []string{`x.yaml:7:29: spec.kprobes[0].selectors[0].matchArgs[0].index: argument index 3 is not declared in args (declared: none)`}},
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

func TestLoader(t *testing.T) {
	p := parseOne(t, header+"  loader: false\n  kprobes: [{call: sys_openat}]\n")
	if p.Spec.Loader {
		t.Error("loader: false parsed as true")
	}
	// loader alone is a policy (Tetragon's loader test policy)
	p = parseOne(t, header+"  loader: true\n")
	want := Source{File: "x.yaml", Line: 6, Column: 11, Path: "spec.loader"}
	if !p.Spec.Loader || p.Spec.LoaderSrc != want {
		t.Errorf("loader %v at %+v, want true at %+v", p.Spec.Loader, p.Spec.LoaderSrc, want)
	}
	_, err := Parse("x.yaml", []byte(header+"  loader: maybe\n"))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:6:11: spec.loader") {
		t.Fatalf("error %v, want one at x.yaml:6:11: spec.loader", err)
	}
}
