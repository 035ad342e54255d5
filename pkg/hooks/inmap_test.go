package hooks

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// InMap and NotInMap on raw_syscalls/sys_enter's id (format field 4), as
// Tetragon's list-syscalls-tracepoint.yaml uses them: a range, a value
// set whose complement is one number, and a syscalls list expanded to its
// numbers.
const inMapPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "inmap"
spec:
  lists:
  - name: "ppid"
    type: "syscalls"
    values:
    - "sys_getppid"
  tracepoints:
  - subsystem: "raw_syscalls"
    event: "sys_enter"
    args:
    - index: 4
      type: "uint64"
    selectors:
    - matchArgs:
      - index: 4
        operator: "InMap"
        values:
        - "4040:4042"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 4
        operator: "NotInMap"
        values:
        - "0:4042"
        - "4044:18446744073709551615"
    - matchArgs:
      - index: 4
        operator: "InMap"
        values:
        - "list:ppid"
`

func TestTracepointInMap(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	h := newHarness(t, MechTracepoint, testutil.Kernel(t).Map())
	h.loadWith(t, inMapPolicy, MechTracepoint)
	if !h.runHelper(t, syscallHelperEnv, strconv.Itoa(killedSyscall)) {
		t.Fatal("system call 4042 (InMap 4040:4042) was not killed")
	}
	if h.runHelper(t, syscallHelperEnv, strconv.Itoa(survivedSyscall)) {
		t.Fatal("system call 4043 was killed")
	}
	// 4044 is in none: NotInMap's ranges hold it, InMap's do not
	if h.runHelper(t, syscallHelperEnv, "4044") {
		t.Fatal("system call 4044 was killed")
	}
	getppid := strconv.Itoa(int(syscallNumbers()["getppid"]))
	if h.runHelper(t, syscallHelperEnv, getppid) {
		t.Fatal("getppid was killed")
	}
	wantEvents(t, h.events(t),
		"helper raw_syscalls/sys_enter SIGKILL size:4042",
		"helper raw_syscalls/sys_enter POST size:4043",
		"helper raw_syscalls/sys_enter POST size:"+getppid)
}

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
	d, err := FromPolicy(ps[0])
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
	_, err = FromPolicy(ps[0])
	const wantErr = `policy "inmap": x.yaml:18:9: spec.tracepoints[0].selectors[0].matchArgs[0]: operator NotInMap: 5 values once lists are expanded, at most 4 in the kernel`
	if err == nil || err.Error() != wantErr {
		t.Fatalf("got %v, want %s", err, wantErr)
	}
}
