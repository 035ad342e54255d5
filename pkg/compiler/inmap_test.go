package compiler

import (
	"reflect"
	"testing"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// InMap compiles to the kernel's ranges: values become v:v, lists their
// system call numbers; more than the kernel holds is refused, not cut.
func TestInMapDecl(t *testing.T) {
	policy := func(values string) string {
		return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "inmap"
spec:
  lists:
  - name: "dups"
    type: "syscalls"
    values: ["sys_dup", "sys_dup2"]
  tracepoints:
  - subsystem: "raw_syscalls"
    event: "sys_enter"
    args:
    - index: 4
      type: "uint64"
    selectors:
    - matchArgs:
      - index: 4
        operator: "NotInMap"
        values: ` + values + `
`
	}
	ps, err := tp.Parse("x.yaml", []byte(policy(`["list:dups", "0x10", "20:30"]`)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := FromPolicy(ps[0], false)
	if err != nil {
		t.Fatal(err)
	}
	got := d[0].Selectors[0].MatchArgs[0]
	want := []tp.Range{{Lo: 0x10, Hi: 0x10}, {Lo: 20, Hi: 30}, {Lo: 32, Hi: 32}, {Lo: 33, Hi: 33}}
	if got.Operator != tp.OpNotInRange || got.Index != 4 || !reflect.DeepEqual(got.Ranges, want) {
		t.Fatalf("got %+v, want NotInRange on argument 4 of %+v", got, want)
	}
	ps, err = tp.Parse("x.yaml", []byte(policy(`["list:dups", "1", "2", "3"]`)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = FromPolicy(ps[0], false)
	const wantErr = `policy "inmap": x.yaml:18:9: spec.tracepoints[0].selectors[0].matchArgs[0]: operator NotInMap: 5 values once lists are expanded, at most 4 in the kernel`
	if err == nil || err.Error() != wantErr {
		t.Fatalf("got %v, want %s", err, wantErr)
	}
}
