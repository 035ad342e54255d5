package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// An Override selector: opening the protected file fails with EPERM.
const overridePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "override"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "security_file_open"
    syscall: false
    args:
    - index: 0
      type: "file"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
      matchActions:
      - action: Override
        argError: -1
`

func TestOverride(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()

	t.Run("syscall-tracepoint refuses", func(t *testing.T) {
		h := newHarness(t, compiler.MechSyscallTracepoint, features)
		_, err := h.tryLoad(t, overridePolicy, compiler.MechSyscallTracepoint)
		if err == nil || !strings.Contains(err.Error(), "action Override needs bpf_override_return, fmod_ret or BPF LSM") ||
			!strings.Contains(err.Error(), "the policy asks for hook-mechanism syscall-tracepoint") {
			t.Fatalf("error %v, want Override refused, saying why the mapping serves the hook", err)
		}
		if st := h.m.Status(); len(st) != 0 {
			t.Fatalf("the refused policy left %+v", st)
		}
	})

	t.Run("fmod_ret", func(t *testing.T) {
		testutil.RequireFeature(t, "kprobe")
		testutil.RequireFeature(t, "fmod_ret")
		h := newHarness(t, compiler.MechKprobe, features)
		writeFiles(t, h.dir, map[string]string{"tetragon": "secret", "other": "x"})
		name, err := h.tryLoad(t, overridePolicy, "auto")
		if err != nil {
			t.Fatal(err)
		}
		if mech := h.mechanismOf(t, name); mech != compiler.MechFmodRet {
			t.Fatalf("Override hook served by %s, want %s", mech, compiler.MechFmodRet)
		}
		if out, _ := h.runFails(t, "cat", filepath.Join(h.dir, "tetragon")); !strings.Contains(out, "Operation not permitted") {
			t.Fatalf("cat of the protected file: %q, want EPERM", out)
		}
		if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
			t.Fatalf("cat other: %q, want untouched", out)
		}
		evs := h.events(t)
		if len(evs) != 1 || !strings.HasPrefix(evs[0].text, "cat security_file_open ") || !strings.HasSuffix(evs[0].text, " file:$DIR/tetragon") {
			t.Fatalf("events %v, want one for cat's open of the protected file", evs)
		}
	})
}

// An Override of every mkdir by the test's own process tree: the agent's
// own mkdir of its pin directory included, as Tetragon's
// override-security.yaml overrides every security_inode_mkdir.
const overrideMkdirPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "override-mkdir"
spec:
  kprobes:
  - call: "security_inode_mkdir"
    syscall: false
    selectors:
    - matchPIDs:
      - operator: In
        followForks: true
        values:
        - %[3]d
      matchActions:
      - action: Override
        argError: -1
`

// TestOverrideMkdirPinned: a policy that refuses mkdir to the agent itself
// once failed to load because the agent made its pin directory after the
// hook attached ("creating pin directory: operation not permitted"). It
// loads pinned, refuses the workload's mkdir, and unloads.
func TestOverrideMkdirPinned(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	testutil.RequireFeature(t, "fmod_ret")
	if _, err := kernelfs.BPF().Ensure(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(kernelfs.BPF().Path, fmt.Sprintf("tetragon-test-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.RemoveAll(root) })
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.m.PinUnder(root)
	name, err := h.tryLoad(t, overrideMkdirPolicy, "auto", os.Getpid())
	if err != nil {
		t.Fatalf("loading a policy that refuses the agent's own mkdir: %v", err)
	}
	if mech := h.mechanismOf(t, name); mech != compiler.MechFmodRet {
		t.Fatalf("Override hook served by %s, want %s", mech, compiler.MechFmodRet)
	}
	if out, _ := h.runFails(t, "mkdir", filepath.Join(h.dir, "d")); !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("mkdir under the policy: %q, want EPERM", out)
	}
	if err := h.m.Unload(name); err != nil {
		t.Fatal(err)
	}
	h.run(t, "mkdir", filepath.Join(h.dir, "d"))
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Fatalf("pins left under %s after unload: %v %v", root, entries, err)
	}
}
