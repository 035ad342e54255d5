package hooks

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// A list of system calls sharing an fd argument and a selector: each
// event names the system call it is of. The mapping serves the list with
// one hook (one table entry per system call), kprobes with one per call.
const syscallListPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "syscall-list"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "list:io"
    args:
    - index: 0
      type: fd
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: ["%[2]s/data"]
      matchBinaries:
      - operator: In
        values: ["%[2]s/a/cat"]
  lists:
  - name: io
    type: syscalls
    values: [sys_openat, sys_read, sys_close]
`

func TestSyscallList(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		e := newFilterEnv(t, mech)
		if _, err := e.h.tryLoad(t, syscallListPolicy, mech); err != nil {
			t.Fatal(err)
		}
		hooks := map[string]string{}
		for _, p := range e.h.m.Status() {
			for _, h := range p.Hooks {
				hooks[h.Call] = h.Mechanism
			}
		}
		want := map[string]string{"list:io": mech}
		if mech == compiler.MechKprobe {
			want = map[string]string{}
			for _, s := range []string{"openat", "read", "close"} {
				want[tp.SyscallSymbol(s)] = mech
			}
		}
		if !maps.Equal(hooks, want) {
			t.Fatalf("hooks %v, want %v", hooks, want)
		}
		e.h.run(t, e.path("a/cat"), "data0")
		e.h.run(t, e.path("b/cat"), "data1") // not a/cat: no event
		// openat's argument 0 is AT_FDCWD, no file: its selector does not
		// match. cat reads until EOF, then closes the file; the selector
		// matched the file behind the fd, the event reports the fd number,
		// as for a single system call.
		read, closed := tp.SyscallSymbol("read"), tp.SyscallSymbol("close")
		wantEvents := []string{"$DIR/a/cat " + closed + " POST int:3"}
		if out, _ := exec.Command(e.path("a/cat"), "--version").Output(); strings.Contains(string(out), "GNU coreutils") {
			// GNU cat reads until EOF; busybox's (the lanes') copies
			// with sendfile, whose argument 0 is stdout
			wantEvents = append([]string{"$DIR/a/cat " + read + " POST int:3", "$DIR/a/cat " + read + " POST int:3"}, wantEvents...)
		}
		var got []string
		for _, ev := range e.h.events(t) {
			got = append(got, ev.text)
		}
		if !slices.Equal(got, wantEvents) {
			t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantEvents, "\n"))
		}
	})
}

// generated_syscalls: every system call of the running kernel, from its
// BTF. Through the mapping it is one hook whose table holds them all.
func TestGeneratedSyscallsList(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	e := newFilterEnv(t, compiler.MechSyscallTracepoint)
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "all-syscalls"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - name: all
    type: generated_syscalls
  kprobes:
  - call: "list:all"
    selectors:
    - matchBinaries:
      - operator: In
        values: ["%[2]s/a/cat"]
`
	e.h.loadWith(t, policy, compiler.MechSyscallTracepoint)
	// (the list read from BTF is checked by pkg/compiler's
	// TestKernelSyscalls)
	e.h.run(t, e.path("a/cat"), "data0")
	e.h.run(t, e.path("b/cat"), "data1")
	seen := map[string]bool{}
	for _, ev := range e.h.events(t) {
		name, fn, _ := strings.Cut(ev.text, " ")
		fn, _, _ = strings.Cut(fn, " ")
		if name != "$DIR/a/cat" {
			t.Errorf("event of %s: %s", name, ev.text)
		}
		seen[fn] = true
	}
	// what every cat does after exec, whatever its libc
	for _, s := range []string{"openat", "close", "exit_group"} {
		if !seen[tp.SyscallSymbol(s)] {
			t.Errorf("no event of %s; seen %v", s, seen)
		}
	}
}

// generated_ftrace names kernel functions, which only kprobes hook: the
// mapping refuses it, naming the feature.
func TestGeneratedFtraceNeedsKprobes(t *testing.T) {
	testutil.RequireRoot(t)
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "ftrace-list"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - {name: fds, type: generated_ftrace, pattern: "^fd_install$"}
  kprobes:
  - call: "list:fds"
    args: [{index: 1, type: file}]
`
	_, err := h.tryLoad(t, policy, compiler.MechSyscallTracepoint)
	want := `policy "ftrace-list": policy.yaml:11:5: spec.kprobes[0]: list:fds: list "fds" (generated_ftrace) names kernel functions, which only kprobes and fentries can hook, and this kernel has no kprobes (probe feature kprobe)`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant   %s", err, want)
	}
	if len(h.m.Status()) != 0 {
		t.Fatalf("loaded: %+v", h.m.Status())
	}
}

// On kprobes, a generated_ftrace list hooks each function the pattern
// matches in available_filter_functions.
func TestGeneratedFtraceList(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, kernelfeatures.Kprobe)
	e := newFilterEnv(t, compiler.MechKprobe)
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "ftrace-list"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - {name: fds, type: generated_ftrace, pattern: "^fd_install$"}
  kprobes:
  - call: "list:fds"
    args: [{index: 1, type: file}]
    selectors:
    - matchArgs: [{index: 1, operator: Prefix, values: ["%[2]s/data"]}]
      matchBinaries: [{operator: In, values: ["%[2]s/a/cat"]}]
`
	e.h.loadWith(t, policy, compiler.MechKprobe)
	e.h.run(t, e.path("a/cat"), "data0")
	e.h.run(t, e.path("b/cat"), "data1")
	var got []string
	for _, ev := range e.h.events(t) {
		got = append(got, ev.text)
	}
	if want := []string{"$DIR/a/cat fd_install POST file:$DIR/data0"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
