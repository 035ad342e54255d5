package compiler

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// The compiler serves Override with return: true by fmod_ret and fexit,
// refuses it without fexit, and with matchReturnArgs, which the entry
// cannot see.
func TestCompileOverrideReturn(t *testing.T) {
	sel := tp.Selector{
		MatchArgs:    []tp.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{"/tmp/x"}}},
		MatchActions: []tp.ActionSelector{{Action: tp.ActionOverride, ArgError: -1}},
	}
	d := Decl{Call: "security_file_permission", Return: true, ReturnType: tp.TypeInt,
		Args: []tp.ArgSpec{{Index: 0, Type: tp.TypeFile}}, Selectors: []tp.Selector{sel}}
	both := map[string]bool{kernelfeatures.FmodRet: true, kernelfeatures.Fexit: true}
	spec, info, err := compileKprobe(d, 1, testFuncs, both)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Override || !spec.Return || info.event.Mechanism != MechFmodRet {
		t.Fatalf("spec override %v return %v, mechanism %s", spec.Override, spec.Return, info.event.Mechanism)
	}
	if _, _, err := compileKprobe(d, 1, testFuncs, map[string]bool{kernelfeatures.FmodRet: true}); err == nil || !strings.Contains(err.Error(), "fexit") {
		t.Fatalf("without fexit: %v, want a refusal naming fexit", err)
	}
	d.Selectors[0].MatchReturnArgs = []tp.ArgSelector{{Index: 0, Operator: "Equal", Values: []string{"0"}}}
	if _, _, err := compileKprobe(d, 1, testFuncs, both); err == nil || !strings.Contains(err.Error(), "matchReturnArgs") {
		t.Fatalf("with matchReturnArgs: %v, want a refusal naming it", err)
	}
}
