package hooks

import (
	"strconv"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
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
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	h.loadWith(t, inMapPolicy, compiler.MechTracepoint)
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
	getppid := strconv.Itoa(syscall.SYS_GETPPID)
	if h.runHelper(t, syscallHelperEnv, getppid) {
		t.Fatal("getppid was killed")
	}
	wantEvents(t, h.events(t),
		"helper raw_syscalls/sys_enter SIGKILL size:4042",
		"helper raw_syscalls/sys_enter POST size:4043",
		"helper raw_syscalls/sys_enter POST size:"+getppid)
}
