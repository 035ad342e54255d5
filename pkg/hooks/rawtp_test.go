package hooks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// rawtpPolicy lists sched_process_exec under rawtracepoints, reporting
// the exec of %[3]s only (TP_PROTO argument 2, the struct linux_binprm *).
const rawtpPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "rawtp-exec"
spec:
  rawtracepoints:
  - subsystem: "sched"
    event: "sched_process_exec"
    args:
    - index: 2
      type: "linux_binprm"
    selectors:
    - matchArgs:
      - index: 2
        operator: "Equal"
        values:
        - "%[3]s"
`

// TestRawTracepoints runs spec.rawtracepoints (tracepoints read raw, as
// with raw: true) on real execs: Tetragon's rawtp.yaml reports each exec
// with the executed file, and a selector on that file keeps only its
// execs.
func TestRawTracepoints(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "raw_tracepoint")
	feats := testutil.Kernel(t).Map()
	resolve := func(name string) string {
		p, err := exec.LookPath(name)
		if err == nil {
			p, err = filepath.EvalSymlinks(p)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	truePath := resolve("true")
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Run("rawtp.yaml", func(t *testing.T) {
		h := newHarness(t, compiler.MechRawTracepoint, feats)
		ps, err := tp.ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/rawtp.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.m.LoadPolicy(ps[0]); err != nil {
			t.Fatal(err)
		}
		if got := h.mechanismOf(t, "rawtp"); got != compiler.MechRawTracepoint {
			t.Fatalf("served by %s, want %s", got, compiler.MechRawTracepoint)
		}
		h.run(t, "true")
		wantEvents(t, h.events(t), fmt.Sprintf("true sched/sched_process_exec POST binprm:%s", truePath))
	})
	t.Run("matchArgs", func(t *testing.T) {
		h := newHarness(t, compiler.MechRawTracepoint, feats)
		// the test binary, not true: true and cat may be one busybox
		h.loadWith(t, rawtpPolicy, compiler.MechRawTracepoint, self)
		h.run(t, "true")
		if h.runHelper(t, syscallHelperEnv, strconv.Itoa(survivedSyscall)) {
			t.Fatal("helper killed")
		}
		wantEvents(t, h.events(t), fmt.Sprintf("helper sched/sched_process_exec POST binprm:%s", self))
	})
}
