package hooks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// grandparentPolicy is Tetragon's lsm_track_grandparent.yml with a
// selector: the exec is reported only when the grandparent of the
// process that execs is named %[3]s.
const grandparentPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "lsm-grandparent"
spec:
  lsmhooks:
  - hook: "bprm_check_security"
    args:
    - index: 0
      type: "string"
      resolve: "mm.owner.real_parent.real_parent.comm"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[3]s"
`

// resolvePathPolicy reads the file a kprobe on security_bprm_check sees
// executed through the resolve path file.f_path (a pointer, then an
// embedded struct path), and reports the exec of %[3]s only.
const resolvePathPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "resolve-path"
spec:
  kprobes:
  - call: "security_bprm_check"
    syscall: false
    args:
    - index: 0
      type: "path"
      resolve: "file.f_path"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[3]s"
`

// execGrandchild runs sh, which runs the test binary as a helper: the
// helper's grandparent is the test process.
func (h *harness) execGrandchild(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `"$0"; :`, self)
	cmd.Env = append(os.Environ(), syscallHelperEnv+"="+strconv.Itoa(survivedSyscall))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "survived") {
		t.Fatalf("sh running the helper: %v: %q", err, out)
	}
}

// TestResolve follows resolve paths from real execs: a string at the end
// of a chain of pointers (the grandparent's comm, from an LSM hook) and an
// embedded struct path (from a kprobe), matched in the kernel.
func TestResolve(t *testing.T) {
	testutil.RequireRoot(t)
	feats := testutil.Kernel(t).Map()
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(comm))
	t.Run("lsm", func(t *testing.T) {
		testutil.RequireFeature(t, "bpf_lsm")
		h := newHarness(t, compiler.MechLSM, feats)
		h.others = "other"
		h.loadWith(t, grandparentPolicy, compiler.MechLSM, name)
		h.execGrandchild(t)
		// sh's own exec has the test's parent as grandparent: no event
		wantEvents(t, h.events(t), "other bprm_check_security POST string:"+name)
	})
	t.Run("lsm_track_grandparent.yml", func(t *testing.T) {
		testutil.RequireFeature(t, "bpf_lsm")
		h := newHarness(t, compiler.MechLSM, feats)
		h.others = "other"
		ps, err := tp.ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/lsm_track_grandparent.yml")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.m.LoadPolicy(ps[0]); err != nil {
			t.Fatal(err)
		}
		h.execGrandchild(t)
		n := 0
		for _, e := range h.events(t) {
			if e.text == "other bprm_check_security POST string:"+name {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d execs reported with grandparent %s, want 1", n, name)
		}
	})
	t.Run("kprobe", func(t *testing.T) {
		testutil.RequireFeature(t, "kprobe")
		h := newHarness(t, compiler.MechKprobe, feats)
		h.loadWith(t, resolvePathPolicy, compiler.MechKprobe, self)
		h.run(t, "true")
		if h.runHelper(t, syscallHelperEnv, strconv.Itoa(survivedSyscall)) {
			t.Fatal("helper killed")
		}
		wantEvents(t, h.events(t), fmt.Sprintf("helper security_bprm_check POST path:%s", self))
	})
}
