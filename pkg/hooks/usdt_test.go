package hooks

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// buildUsdtTarget puts the program with the USDT probes the tests attach
// to, testdata/usdt/target.c, into dir as usdt-target.
func buildUsdtTarget(t *testing.T, dir string) string {
	t.Helper()
	return testutil.CProgram(t, "testdata/usdt/target.c", filepath.Join(dir, "usdt-target"))
}

const usdtArgsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "usdt-args"
spec:
  usdts:
  - path: "%[3]s"
    provider: "tetragon_test"
    name: "args"
    args:
    - index: 0
      type: "int64"
    - index: 1
      type: "int32"
    - index: 2
      type: "int32"
    - index: 3
      type: "uint64"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "-5"
`

// A USDT probe's arguments, read where its note puts them (a register,
// memory at a register plus an offset, a constant), filtered in the
// kernel; while the hook is attached the kernel counts it in the probe's
// semaphore.
func TestUsdtArgs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	bin := buildUsdtTarget(t, h.dir)
	if out, _ := h.run(t, bin, "1", "2"); !strings.Contains(out, "semaphore 0 ") {
		t.Fatalf("before the hook: %q, want semaphore 0", out)
	}
	h.loadWith(t, usdtArgsPolicy, compiler.MechUprobe, bin)
	out, _ := h.run(t, bin, "0x123456789", "-5")
	if !strings.Contains(out, "semaphore 1 set -5") {
		t.Fatalf("with the hook: %q, want semaphore 1 (the kernel's reference count) and set -5 (nothing sets it)", out)
	}
	h.run(t, bin, "3", "6") // -5 only
	wantEvents(t, h.events(t),
		"$DIR/usdt-target tetragon_test:args POST long:4886718345 int:-5 int:7 size:9773436690")
}

const usdtSitesPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "usdt-sites"
spec:
  usdts:
  - path: "%[3]s"
    provider: "tetragon_test"
    name: "twice"
    args:
    - index: 0
      type: "int32"
`

// A probe with two sites, whose argument is in a register at one and in
// memory at the other: one hook, attached at both, each site read where
// its own note says.
func TestUsdtSites(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	bin := buildUsdtTarget(t, h.dir)
	h.loadWith(t, usdtSitesPolicy, compiler.MechUprobe, bin)
	h.run(t, bin, "1", "77")
	wantEvents(t, h.events(t),
		"$DIR/usdt-target tetragon_test:twice POST int:77",
		"$DIR/usdt-target tetragon_test:twice POST int:77")
	if st := h.stats(t); st.Calls != 2 || st.Posted != 2 {
		t.Fatalf("stats %+v, want 2 calls posted (one per site)", st)
	}
}

const usdtSetPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "usdt-set"
spec:
  usdts:
  - path: "%[3]s"
    provider: "tetragon_test"
    name: "set"
    args:
    - index: 0
      type: "int32"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "5"
      matchActions:
      - action: Set
        argIndex: 0
        argValue: 32
`

// Set writes argValue into the register the probe's argument is in: the
// program goes on with the new value, and a call the selector does not
// match keeps its own. That needs a kernel that lets uprobe programs write
// their context; one that does not (this project's 6.18 host, Debian's 6.1
// and 6.12) refuses the policy, naming it, and leaves the program alone.
func TestUsdtSet(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	bin := buildUsdtTarget(t, h.dir)
	if err := sensor.ProbeCtxWrites(); errors.Is(err, sensor.ErrNoCtxWrites) {
		wantRefused(t, h, usdtSetPolicy, bin, `spec.usdts[0]: `+bin+` tetragon_test:set: `+sensor.ErrNoCtxWrites.Error())
		if out, _ := h.run(t, bin, "1", "5"); !strings.Contains(out, "set 5 ") {
			t.Fatalf("after the refusal: %q, want set 5", out)
		}
		return
	} else if err != nil {
		t.Fatal(err)
	}
	h.loadWith(t, usdtSetPolicy, compiler.MechUprobe, bin)
	if out, _ := h.run(t, bin, "1", "5"); !strings.Contains(out, "set 32 ") {
		t.Fatalf("matching call: %q, want set 32", out)
	}
	if out, _ := h.run(t, bin, "1", "6"); !strings.Contains(out, "set 6 ") {
		t.Fatalf("other call: %q, want set 6", out)
	}
	wantEvents(t, h.events(t), "$DIR/usdt-target tetragon_test:set POST int:5")
}

// wantRefused checks that the policy is refused with an error containing
// want, and that nothing of it stays loaded.
func wantRefused(t *testing.T, h *harness, policy, bin, want string) {
	t.Helper()
	_, err := h.tryLoad(t, policy, compiler.MechUprobe, bin)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("load: %v, want an error containing %q", err, want)
	}
	if st := h.m.Status(); len(st) != 0 {
		t.Fatalf("refused, but %+v is loaded", st)
	}
}

const uprobeOverridePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "uprobe-override"
spec:
  uprobes:
  - path: "%[3]s"
    symbols:
    - "checked"
    args:
    - index: 0
      type: "int32"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "5"
      matchActions:
      - action: Regs
        argReg:
        - "rdi:41"
      - action: Override
        argError: -7
`

// Override on a uprobe at a function's first instruction returns argError
// to the caller without running the function; Regs writes registers
// first. Where the kernel does not let uprobe programs write registers the
// policy is refused, naming that.
func TestUprobeOverrideRegs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	bin := buildUsdtTarget(t, h.dir)
	if err := sensor.ProbeCtxWrites(); errors.Is(err, sensor.ErrNoCtxWrites) {
		wantRefused(t, h, uprobeOverridePolicy, bin, `spec.uprobes[0]: `+bin+` checked: `+sensor.ErrNoCtxWrites.Error())
		if out, _ := h.run(t, bin, "1", "5"); !strings.Contains(out, "checked 6") {
			t.Fatalf("after the refusal: %q, want checked 6", out)
		}
		return
	} else if err != nil {
		t.Fatal(err)
	}
	h.loadWith(t, uprobeOverridePolicy, compiler.MechUprobe, bin)
	if out, _ := h.run(t, bin, "1", "5"); !strings.Contains(out, "checked -7") {
		t.Fatalf("matching call: %q, want checked -7", out)
	}
	if out, _ := h.run(t, bin, "1", "6"); !strings.Contains(out, "checked 7") {
		t.Fatalf("other call: %q, want checked 7", out)
	}
	wantEvents(t, h.events(t), "$DIR/usdt-target checked OVERRIDE int:5")
}
