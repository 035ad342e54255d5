package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// A nop argument is a placeholder: declared, never read, no record slot
// and no value in the event. The compilers of every mechanism leave it out.
func TestCompileNop(t *testing.T) {
	fd := HookDecl{Call: "fd_install", Args: []ArgDecl{{Index: 0, Type: "nop"}, {Index: 1, Type: "file"}},
		Selectors: []SelectorDecl{{MatchArgs: []MatchDecl{{Index: 1, Operator: "Equal", Values: []string{"/tmp/x"}}}}}}
	// the mapping: fd_install's first parameter is an int in the mapping,
	// which nop fits as any parameter does
	spec, info, err := compileSyscallMapping(fd, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 1 || spec.Args[0].Kind != sensor.KindPath || len(info.argOrder) != 1 || info.argOrder[0].Type != "file" ||
		spec.Selectors[0].Matches[0].Arg != 0 {
		t.Fatalf("mapping: args %+v order %+v selectors %+v", spec.Args, info.argOrder, spec.Selectors)
	}
	kspec, info, err := compileKprobe(fd, 1, testFuncs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(kspec.Args) != 1 || kspec.Args[0].Source != sensor.SrcRegKFile || kspec.Params != 2 || len(info.argOrder) != 1 {
		t.Fatalf("kprobe: spec %+v order %+v", kspec, info.argOrder)
	}
	// a syscall through the mapping: nop between a string and an int
	sys := HookDecl{Call: "sys_openat", Syscall: true, Args: []ArgDecl{{Index: 0, Type: "nop"}, {Index: 1, Type: "string"}, {Index: 2, Type: "nop"}, {Index: 3, Type: "int"}}}
	spec, info, err = compileSyscallMapping(sys, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 2 || spec.Args[0].Source != sensor.SrcRegUstr || spec.Args[1].Reg != 3 || len(info.argOrder) != 2 {
		t.Fatalf("syscall mapping: args %+v order %+v", spec.Args, info.argOrder)
	}
	// a uprobe reads registers: only the declared non-nop ones
	up := HookDecl{Kind: KindUprobe, Call: "f", Path: "/bin/true", Args: []ArgDecl{{Index: 5, Type: "nop"}, {Index: 0, Type: "int64"}}}
	kspec, _, err = compileUprobe(up, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(kspec.Args) != 1 || kspec.Params != 1 {
		t.Fatalf("uprobe: spec %+v", kspec)
	}
	// still one declaration per index
	fd.Args = append(fd.Args, ArgDecl{Index: 0, Type: "int"})
	if _, _, err := compileSyscallMapping(fd, 1, "test"); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("mapping, index 0 declared twice: %v", err)
	}
	if _, _, err := compileKprobe(fd, 1, testFuncs, nil); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("kprobe, index 0 declared twice: %v", err)
	}
}

const nopFdInstallPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-fd-install"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: "nop"
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

const nopSyscallPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-openat"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 0
      type: "nop"
    - index: 1
      type: "string"
    - index: 2
      type: "nop"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

// A policy with nop arguments loads on the syscall-tracepoint mapping and
// on kprobes, and its events carry the other arguments only.
func TestNopKernelFunction(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		for _, tc := range []struct{ name, policy, want string }{
			{"fd_install", nopFdInstallPolicy, "cat fd_install POST file:$DIR/watched"},
			{"syscall", nopSyscallPolicy, "cat sys_openat POST string:$DIR/watched"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, mech, testutil.Kernel(t).Map())
				writeFiles(t, h.dir, map[string]string{"watched": "w", "other": "x"})
				h.load(t, tc.policy)
				h.run(t, "cat", filepath.Join(h.dir, "watched"))
				h.run(t, "cat", filepath.Join(h.dir, "other"))
				wantEvents(t, h.events(t), tc.want)
			})
		}
	})
}

const nopTracepointPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-tracepoint"
spec:
  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_openat"
    args:
    - index: 4
      type: "nop"
    - index: 5
      type: "nop"
    - index: 6
      type: "string"
    selectors:
    - matchArgs:
      - index: 6
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

// On a tracepoint a nop field is not read either.
func TestNopTracepoint(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	h := newHarness(t, MechTracepoint, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"watched": "w", "other": "x"})
	h.loadWith(t, nopTracepointPolicy, MechTracepoint)
	h.run(t, "cat", filepath.Join(h.dir, "watched"))
	h.run(t, "cat", filepath.Join(h.dir, "other"))
	wantEvents(t, h.events(t), "cat syscalls/sys_enter_openat POST string:$DIR/watched")
}

const nopUprobePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-uprobe"
spec:
  uprobes:
  - path: "%[3]s"
    offsets:
    - %[4]d
    args:
    - index: 1
      type: "nop"
    - index: 0
      type: "int64"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "4242"
`

// On a uprobe too.
func TestNopUprobe(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	off := funcOffset(t, self, uprobeTarget)
	h := newHarness(t, MechUprobe, testutil.Kernel(t).Map())
	h.loadWith(t, nopUprobePolicy, MechUprobe, self, off)
	h.runHelper(t, uprobeHelperEnv, "4242")
	h.runHelper(t, uprobeHelperEnv, "7")
	wantEvents(t, h.events(t), fmt.Sprintf("helper %#x POST long:4242", off))
}
