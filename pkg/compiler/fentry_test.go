package compiler

import (
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// spec.fentries become kprobe declarations marked Fentry, compiled for
// fentry (fexit for return: true, fmod_ret for Override) against the
// running kernel's BTF, without attaching.
func TestCompileFentry(t *testing.T) {
	funcs, err := kernelFuncs(runningKernel())
	if err != nil {
		t.Skipf("kernel lacks BTF: %v", err)
	}
	ps, err := tp.ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/fentry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	decls, err := FromPolicy(ps[0], false)
	if err != nil {
		t.Fatal(err)
	}
	if len(decls) != 2 || !decls[0].Fentry || !decls[1].Fentry || decls[0].Kind != hookevent.KindKprobe {
		t.Fatalf("decls %+v", decls)
	}
	for i, want := range []string{MechFexit, MechFentry} {
		spec, info, err := compileKprobe(decls[i], 1, funcs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Attach != sensor.AttachFentry || info.event.Mechanism != want || spec.Return != decls[i].Return || spec.Args[0].Source != sensor.SrcRegSock {
			t.Errorf("%s: spec %+v mechanism %s, want fentry attach and %s", decls[i].Call, spec, info.event.Mechanism, want)
		}
	}
	d := Decl{Call: "security_file_open", Fentry: true, Args: []tp.ArgSpec{{Index: 0, Type: "file"}},
		Selectors: []tp.Selector{{MatchActions: []tp.ActionSelector{{Action: "Override", ArgError: -1}}}}}
	spec, info, err := compileKprobe(d, 1, funcs, map[string]bool{"fmod_ret": true})
	if err != nil || !spec.Override || info.event.Mechanism != MechFmodRet {
		t.Fatalf("Override on an fentry: %+v %s %v, want fmod_ret", spec, info.event.Mechanism, err)
	}
}
